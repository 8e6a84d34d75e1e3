"""An in-memory stand-in for SalesforceClient, for the writer's TestPipeline tests (same process)."""

import itertools
import re

from salesforce.client import SaveResult
from salesforce.errors import ApiLimitExceeded, SalesforceApiError, SalesforceLoginError, TransientError
from schemas.fields import FieldMeta, ObjectMeta

DESCRIBES = {
    "Lead": ObjectMeta(
        "Lead",
        {
            f.name.lower(): f
            for f in (
                FieldMeta("Id", "id", 18, createable=False, updateable=False),
                FieldMeta("Email", "email", 80),
                FieldMeta("FirstName", "string", 40),
                FieldMeta("LastName", "string", 80, nillable=False),
                FieldMeta("Company", "string", 255, nillable=False),
                FieldMeta("Title", "string", 128),
                FieldMeta("NumberOfEmployees", "int"),
                FieldMeta("IsConverted", "boolean", createable=False, updateable=False),
                FieldMeta("LastModifiedDate", "datetime", createable=False, updateable=False),
                FieldMeta("testProp__c", "string", 100, custom=True),
            )
        },
    ),
    "Account": ObjectMeta(
        "Account",
        {
            f.name.lower(): f
            for f in (
                FieldMeta("Id", "id", 18, createable=False, updateable=False),
                FieldMeta("Name", "string", 255, nillable=False),
                FieldMeta("AccountNumber", "string", 40),
                FieldMeta("LastModifiedDate", "datetime", createable=False, updateable=False),
            )
        },
    ),
}

# Title values the org refuses, as Salesforce reports a record it refuses: (statusCode, message).
REFUSED_TITLES = {
    "reject": ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Title may not be 'reject'"),
    "too long": ("STRING_TOO_LONG", "Title: data value too large: too long (max length=128)"),
    "locked": ("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record"),
}

# The org's records and switches, shared by every FakeClient in this process; reset per test.
# Switches: login_error, login_unreachable, limit_exceeded, unavailable, no_access (login and
# describe fail), and raise_on = {"query_all" | "create_many" | "update_many": exception}.
STATE: dict = {}
_ids = itertools.count(1)


def reset(records: dict | None = None, **switches) -> None:
    STATE.clear()
    STATE["records"] = {name: [dict(r) for r in rows] for name, rows in (records or {}).items()}
    STATE.update(switches)


def _unquote(literal: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)), literal)


class FakeClient:
    """Answers like SalesforceClient; `reject` values of Title fail the record."""

    def __init__(self, credentials, settings) -> None:
        self.credentials = credentials
        self.settings = settings
        self.api_calls = 0

    def login(self) -> None:
        self.api_calls += 1
        if STATE.get("login_error"):
            raise SalesforceLoginError("INVALID_LOGIN", "Invalid username, password, security token")
        if STATE.get("login_unreachable"):
            raise TransientError("ConnectionError", "login request failed", attempts=6)

    def describe(self, sobject: str) -> ObjectMeta:
        self.api_calls += 1
        if STATE.get("limit_exceeded"):
            raise ApiLimitExceeded("TotalRequests Limit exceeded.")
        if STATE.get("unavailable"):
            raise TransientError("SERVER_UNAVAILABLE", "try again later", attempts=6)
        if STATE.get("no_access"):
            raise SalesforceApiError(404, "NOT_FOUND", "The requested resource does not exist")
        return DESCRIBES[sobject]

    def _maybe_raise(self, method: str) -> None:
        self.api_calls += 1
        failure = STATE.get("raise_on", {}).get(method)
        if failure is not None:
            raise failure

    @staticmethod
    def _refused(record: dict) -> SaveResult | None:
        if record.get("Title") not in REFUSED_TITLES:
            return None
        code, message = REFUSED_TITLES[record["Title"]]
        return SaveResult(None, False, ({"statusCode": code, "message": message, "fields": ["Title"]},))

    def query_all(self, soql: str) -> list[dict]:
        self._maybe_raise("query_all")
        m = re.search(r"SELECT (.*) FROM (\w+) WHERE (\w+) IN \((.*)\) ORDER BY", soql)
        fields = [f.strip() for f in m.group(1).split(",")]
        sobject, match_field = m.group(2), m.group(3)
        wanted = {_unquote(v).lower() for v in re.findall(r"'((?:[^'\\]|\\.)*)'", m.group(4))}
        rows = [r for r in STATE["records"].get(sobject, []) if str(r.get(match_field, "")).lower() in wanted]
        return [{f: r.get(f) for f in fields} for r in rows]

    def create_many(self, sobject: str, records: list[dict]) -> list[SaveResult]:
        def insert(record: dict) -> str:
            new_id = f"00Q{next(_ids):015d}"
            STATE["records"].setdefault(sobject, []).append({**record, "Id": new_id, "LastModifiedDate": "2"})
            return new_id

        return self._save("create_many", records, insert)

    def update_many(self, sobject: str, records: list[dict]) -> list[SaveResult]:
        def update(record: dict) -> str:
            next(x for x in STATE["records"][sobject] if x["Id"] == record["Id"]).update(record)
            return record["Id"]

        return self._save("update_many", records, update)

    def _save(self, method: str, records: list[dict], write) -> list[SaveResult]:
        self._maybe_raise(method)
        return [self._refused(r) or SaveResult(write(r), True) for r in records]

    def back_off(self, attempt: int) -> None:
        pass
