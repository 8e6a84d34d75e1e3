"""DryRunClient (salesforce/dry_run.py) around a real client of the emulator: reads reach the org, writes are
planned (drain_plan) and counted (planned_calls, api_calls) instead of sent."""

import pickle
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from emulator.process import EmulatorProcess
from salesforce.actions_write import ActionItem, ActionOutcome, ActionSpec, run_action
from salesforce.client import SalesforceClient, SaveResult
from salesforce.connection import ConnectionSettings
from salesforce.credentials import Credentials
from salesforce.dry_run import DryRunClient, DryRunFactory
from tests.e2e.conftest import emulator_with
from tests.salesforce.conftest import calls
from tests.salesforce.org_records import contact, kinds, seed, stored

CONFIG = """
custom_fields:
  Contact:
    - {name: UserId__c, type: external_id, length: 80, unique: true}
  Case:
    - {name: Beamforce_Message_Id__c, type: external_id, length: 80, unique: true}
"""


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """This module's org (custom fields); conftest's org, client, ... fixtures use it."""
    with emulator_with(tmp_path_factory, "dry-run", CONFIG) as emu:
        yield emu


@pytest.fixture
def dry(client: SalesforceClient) -> DryRunClient:
    return DryRunClient(client)


@pytest.fixture
def ada_and_bob(org: EmulatorProcess) -> tuple[str, str]:
    return tuple(
        seed(
            org,
            "Contact",
            contact("Ada", "ada@example.com", UserId__c="u-1", Title="Engineer"),
            contact("Bob", "bob@example.com", UserId__c="u-2", Title="Clerk"),
        )
    )


def test_reads_reach_the_org_and_are_counted(dry: DryRunClient, org: Any, ada_and_bob) -> None:
    ada, bob = ada_and_bob
    assert dry.query_all("SELECT Id, Email FROM Contact ORDER BY Email") == [
        {"Id": ada, "Email": "ada@example.com"},
        {"Id": bob, "Email": "bob@example.com"},
    ]
    assert dry.describe("Contact").get("UserId__c").external_id is True
    assert kinds(org) == {"describe": 1, "login": 1, "query": 1}
    assert (dry.api_calls, dry.planned_calls, dry.drain_plan()) == (3, 0, [])


def test_an_update_is_planned_and_answers_as_a_real_one(dry: DryRunClient, org: Any, ada_and_bob) -> None:
    ada, bob = ada_and_bob
    spec = ActionSpec("title", "Contact", "update", match_fields=("UserId__c",))
    items = [
        ActionItem(("U-1",), {"Title": "CTO"}, {"LeadSource": "Web"}),
        ActionItem(("u-2",), {"Title": "CEO", "Department": "Board"}),
        ActionItem(("u-3",), {"Title": "COO"}),
    ]
    assert run_action(dry, spec, items) == [
        ActionOutcome("updated", (ada,)),
        ActionOutcome("updated", (bob,)),
        ActionOutcome("no_match"),
    ]
    assert dry.drain_plan() == [
        {"operation": "update", "object": "Contact", "id": ada, "fields": {"Title": "CTO"}},
        {
            "operation": "update",
            "object": "Contact",
            "id": bob,
            "fields": {"Title": "CEO", "Department": "Board"},
        },
    ]
    assert dry.drain_plan() == []  # handed over once
    # Nothing reached the org: the lookup was the only call after the login.
    assert stored(org, "Contact", "Title", "Department") == [
        {"Id": ada, "Title": "Engineer", "Department": None},
        {"Id": bob, "Title": "Clerk", "Department": None},
    ]
    assert calls(org) == {"total": 2, "by_kind": {"login": 1, "query": 1}}
    assert (dry.planned_calls, dry.api_calls) == (1, 3)


def test_an_upsert_plans_its_updates_and_creates(dry: DryRunClient, org: Any, ada_and_bob) -> None:
    ada, _ = ada_and_bob
    spec = ActionSpec("user", "Contact", "upsert", match_fields=("UserId__c",))
    items = [
        ActionItem(("u-1",), {"Title": "CTO"}, {"LastName": "Unknown"}),
        ActionItem(("u-9",), {"Title": "CEO"}, {"LastName": "Unknown", "Title": "ignored"}),
    ]
    # A planned create has no id: Salesforce would have chosen it.
    assert run_action(dry, spec, items) == [ActionOutcome("updated", (ada,)), ActionOutcome("created", ())]
    assert dry.drain_plan() == [
        {"operation": "update", "object": "Contact", "id": ada, "fields": {"Title": "CTO"}},
        {
            "operation": "create",
            "object": "Contact",
            "fields": {"Title": "CEO", "UserId__c": "u-9", "LastName": "Unknown"},
        },
    ]
    assert len(stored(org, "Contact")) == 2
    assert kinds(org) == {"login": 1, "query": 1}
    assert (dry.planned_calls, dry.api_calls) == (2, 4)


def test_a_create_with_idempotency_field_plans_upserts_and_calls_nothing(dry: DryRunClient, org: Any) -> None:
    spec = ActionSpec("open_case", "Case", "create", idempotency_field="Beamforce_Message_Id__c")
    items = [
        ActionItem((), {"Subject": "Login broken"}, {"Origin": "Web"}, instance="m-1"),
        ActionItem((), {"Subject": "Refund"}, instance="m-2"),
    ]
    assert run_action(dry, spec, items) == [ActionOutcome("created", ())] * 2
    assert dry.drain_plan() == [
        {
            "operation": "upsert",
            "object": "Case",
            "fields": {"Subject": "Login broken", "Origin": "Web", "Beamforce_Message_Id__c": "m-1"},
            "external_id_field": "Beamforce_Message_Id__c",
        },
        {
            "operation": "upsert",
            "object": "Case",
            "fields": {"Subject": "Refund", "Beamforce_Message_Id__c": "m-2"},
            "external_id_field": "Beamforce_Message_Id__c",
        },
    ]
    assert (stored(org, "Case"), calls(org)) == ([], {"total": 0, "by_kind": {}})
    assert (dry.planned_calls, dry.api_calls) == (1, 1)


def test_a_delete_is_planned_and_the_record_stays(dry: DryRunClient, org: Any, ada_and_bob) -> None:
    ada, bob = ada_and_bob
    spec = ActionSpec("forget", "Contact", "delete", match_fields=("Email",))
    assert run_action(dry, spec, [ActionItem(("ADA@example.com",))]) == [ActionOutcome("deleted", (ada,))]
    assert dry.drain_plan() == [{"operation": "delete", "object": "Contact", "id": ada}]
    assert stored(org, "Contact") == [{"Id": ada}, {"Id": bob}]
    assert kinds(org) == {"login": 1, "query": 1}
    assert (dry.planned_calls, dry.api_calls) == (1, 3)


def test_planned_calls_are_one_per_200_records_and_call(dry: DryRunClient, org: Any) -> None:
    creates = [{"LastName": f"P{i}"} for i in range(450)]
    assert dry.create_many("Contact", creates) == [SaveResult(None, True)] * 450
    assert dry.planned_calls == 3
    updates = [{"id": f"003000000000{i:03d}AAA", "Title": "T"} for i in range(200)]
    assert dry.update_many("Contact", updates) == [
        SaveResult(f"003000000000{i:03d}AAA", True) for i in range(200)
    ]
    assert dry.planned_calls == 4
    ids = [f"003000000000{i:03d}AAA" for i in range(201)]
    assert dry.delete_many("Contact", ids) == [SaveResult(i, True) for i in ids]
    assert dry.planned_calls == 6
    assert dry.upsert_many("Contact", "UserId__c", [{"UserId__c": "u-1", "LastName": "A"}]) == [
        SaveResult(None, True)
    ]
    assert dry.planned_calls == 7
    plan = dry.drain_plan()
    assert [len(plan), plan[0], plan[450], plan[650], plan[-1]] == [
        450 + 200 + 201 + 1,
        {"operation": "create", "object": "Contact", "fields": {"LastName": "P0"}},
        {"operation": "update", "object": "Contact", "id": "003000000000000AAA", "fields": {"Title": "T"}},
        {"operation": "delete", "object": "Contact", "id": "003000000000000AAA"},
        {
            "operation": "upsert",
            "object": "Contact",
            "fields": {"UserId__c": "u-1", "LastName": "A"},
            "external_id_field": "UserId__c",
        },
    ]
    assert (calls(org)["total"], dry.api_calls) == (0, 7)


def test_a_large_action_plans_the_calls_a_real_run_makes(dry: DryRunClient, org: Any) -> None:
    spec = ActionSpec("user", "Contact", "upsert", match_fields=("UserId__c",))
    items = [ActionItem((f"u-{i}",), {"Title": "T"}, {"LastName": f"P{i}"}) for i in range(450)]
    assert run_action(dry, spec, items) == [ActionOutcome("created", ())] * 450
    assert [row["fields"]["UserId__c"] for row in dry.drain_plan()] == [f"u-{i}" for i in range(450)]
    assert kinds(org) == {"login": 1, "query": 1}
    assert (dry.planned_calls, dry.api_calls) == (3, 2 + 3)


def test_each_thread_drains_its_own_plan(dry: DryRunClient) -> None:
    theirs: list[list[dict]] = []

    def writer() -> None:
        dry.delete_many("Contact", ["003000000000001AAA"])
        theirs.append(dry.drain_plan())

    dry.delete_many("Contact", ["003000000000002AAA"])
    thread = threading.Thread(target=writer)
    thread.start()
    thread.join()
    assert theirs == [[{"operation": "delete", "object": "Contact", "id": "003000000000001AAA"}]]
    assert dry.drain_plan() == [{"operation": "delete", "object": "Contact", "id": "003000000000002AAA"}]
    assert dry.planned_calls == 2  # counted for the whole client


def test_other_attributes_are_the_wrapped_clients(dry: DryRunClient, client: SalesforceClient) -> None:
    dry.deadline = 1234.5
    assert (client.deadline, dry.deadline) == (1234.5, 1234.5)
    assert dry.settings is client.settings
    dry.planned_calls = 7  # the wrapper's own
    assert (dry.planned_calls, hasattr(client, "planned_calls")) == (7, False)


def test_the_factory_pickles_and_wraps_what_it_makes(
    org: Any, credentials: Credentials, settings: ConnectionSettings
) -> None:
    factory = pickle.loads(pickle.dumps(DryRunFactory(SalesforceClient)))
    dry = factory(credentials, settings)
    assert isinstance(dry, DryRunClient)
    assert (dry.credentials, dry.settings) == (credentials, settings)
    assert dry.query_all("SELECT Id FROM Contact") == []
    assert dry.create_many("Contact", [{"LastName": "A"}]) == [SaveResult(None, True)]
    assert (kinds(org), dry.api_calls) == ({"login": 1, "query": 1}, 3)
