"""Dry runs: a client that logs in, describes and looks records up, and plans its writes instead."""

import math
import threading
from collections.abc import Callable
from typing import Any

from salesforce.client import COLLECTION_SIZE, SaveResult

# Attributes that belong to the wrapper; every other attribute is the wrapped client's (set and read).
_OWN = frozenset({"_client", "_local", "_lock", "planned_calls"})


class DryRunClient:
    """Wraps a SalesforceClient: reads go through (and are counted as calls), writes are planned.

    A planned write answers as Salesforce would have for a successful one (creates without an id), so
    that the writer's own logic (lookups, merging, policies, converted Leads) decides exactly what a real
    run would; each writer thread collects its plan, and drain_plan() hands it over. `planned_calls`
    counts the write calls a real run would make (one per 200 records and call).
    """

    def __init__(self, client: Any) -> None:
        object.__setattr__(self, "_client", client)
        object.__setattr__(self, "_local", threading.local())
        object.__setattr__(self, "_lock", threading.Lock())
        object.__setattr__(self, "planned_calls", 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _OWN:
            object.__setattr__(self, name, value)
        else:  # deadline, credentials, throttler: the wrapped client's
            setattr(self._client, name, value)

    @property
    def api_calls(self) -> int:
        """The calls a real run would have made: the reads made now and the writes planned."""
        return self._client.api_calls + self.planned_calls

    def drain_plan(self) -> list[dict]:
        """The writes this thread planned since it last asked, as JSON-ready rows."""
        plan = getattr(self._local, "plan", None) or []
        self._local.plan = []
        return plan

    def _plan(self, rows: list[dict]) -> None:
        if not hasattr(self._local, "plan"):
            self._local.plan = []
        self._local.plan.extend(rows)
        with self._lock:
            object.__setattr__(
                self, "planned_calls", self.planned_calls + math.ceil(len(rows) / COLLECTION_SIZE)
            )

    def create_many(self, sobject: str, records: list[dict]) -> list[SaveResult]:
        self._plan([_row("create", sobject, r) for r in records])
        return [SaveResult(None, True) for _ in records]

    def update_many(self, sobject: str, records: list[dict]) -> list[SaveResult]:
        self._plan([_row("update", sobject, r) for r in records])
        return [SaveResult(_id_of(r), True) for r in records]

    def upsert_many(self, sobject: str, external_id_field: str, records: list[dict]) -> list[SaveResult]:
        rows = [{**_row("upsert", sobject, r), "external_id_field": external_id_field} for r in records]
        self._plan(rows)
        return [SaveResult(None, True) for _ in records]

    def delete_many(self, sobject: str, ids: list[str]) -> list[SaveResult]:
        self._plan([{"operation": "delete", "object": sobject, "id": i} for i in ids])
        return [SaveResult(i, True) for i in ids]


class DryRunFactory:
    """A client factory (credentials, settings) -> DryRunClient around what `factory` makes; picklable."""

    def __init__(self, factory: Callable[..., Any]) -> None:
        self._factory = factory

    def __call__(self, credentials: Any, settings: Any) -> DryRunClient:
        return DryRunClient(self._factory(credentials, settings))


def _id_of(record: dict) -> str | None:
    return next((v for k, v in record.items() if k.lower() == "id"), None)


def _row(operation: str, sobject: str, record: dict) -> dict:
    row: dict[str, Any] = {"operation": operation, "object": sobject}
    record_id = _id_of(record)
    if record_id is not None:
        row["id"] = record_id
    row["fields"] = {k: v for k, v in record.items() if k.lower() != "id"}
    return row
