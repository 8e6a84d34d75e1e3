"""run_action (salesforce/actions_write.py) against the emulator: creates, reads, updates, upserts and deletes
of custom actions, their lookups, their policies for several matches and their answers to failed calls.

A create whose answer is lost is played by a TLS proxy in front of the emulator (the emulator's own faults
refuse a call before running it): the proxy forwards the call, the emulator carries it out, and the proxy
closes the connection instead of answering.
"""

import dataclasses
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from emulator.certs import paths_for
from emulator.process import EmulatorProcess, start_emulator, trusting_session
from salesforce.actions_write import (
    BOOLEAN,
    DATE,
    DATETIME,
    NUMBER,
    TEXT,
    ActionItem,
    ActionOutcome,
    ActionSpec,
    match_key,
    match_queries,
    run_action,
)
from salesforce.client import SalesforceClient
from salesforce.connection import ConnectionSettings
from salesforce.credentials import Credentials
from salesforce.soql import encoded_length
from tests.salesforce.conftest import FakeClock, Sleeps
from tests.salesforce.org_records import contact, kinds, seed, stored

CONFIG = """
custom_fields:
  Contact:
    - {name: UserId__c, type: external_id, length: 80, unique: true}
    - {name: Score__c, type: number, precision: 18, scale: 0}
    - {name: Rate__c, type: number, precision: 18, scale: 2}
    - {name: Seen__c, type: datetime}
    - {name: Born__c, type: date}
    - {name: Vip__c, type: boolean}
  Case:
    - {name: Beamforce_Message_Id__c, type: external_id, length: 80, unique: true}
duplicate_rules:
  - {name: Lead_Email_Rule, object: Lead, fields: [Email], action: block,
     error_message: "A lead with this email exists."}
"""
API_PATH = "/services/data/v59.0"
CREATE_CASE = ActionSpec("open_case", "Case", "create")
CREATE_CASE_ONCE = ActionSpec("open_case", "Case", "create", idempotency_field="Beamforce_Message_Id__c")
CASE_DEFAULTS = {"Priority": "Low", "Origin": "Web"}


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def emulator_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path: Path = tmp_path_factory.mktemp("actions-write")
    (path / "org.yaml").write_text(CONFIG)
    return path


@pytest.fixture(scope="module")
def emulator(emulator_dir: Path) -> Iterator[EmulatorProcess]:
    """This module's org (custom fields, a duplicate rule); conftest's org, client, ... fixtures use it."""
    with start_emulator(emulator_dir / "data", config_path=emulator_dir / "org.yaml") as emu:
        yield emu


class LossyProxy:
    """A TLS proxy in front of the emulator that forwards every call and can lose the answer of some:
    the emulator carries the call out, then the proxy closes the connection without answering."""

    _HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"})

    def __init__(self, emu: EmulatorProcess, data_dir: Path) -> None:
        self._upstream = emu.info["instance_url"]
        self._session = trusting_session(emu.info)
        self._lock = threading.Lock()
        self._to_lose: list[tuple[str, str]] = []
        self._before: list[tuple[str, str, Callable[[], None]]] = []  # run once before forwarding the call
        self.lost: list[str] = []  # "METHOD path" of each call whose answer was lost
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                # The Host header goes through: the login answers with the proxy as the instance.
                headers = {k: v for k, v in self.headers.items() if k.lower() not in proxy._HOP}
                proxy._run_before(self.command, self.path)
                answer = proxy._session.request(
                    self.command,
                    proxy._upstream + self.path,
                    data=body,
                    headers=headers,
                    allow_redirects=False,
                )
                if proxy._take(self.command, self.path):
                    self.close_connection = True
                    return
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in proxy._HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PATCH = do_DELETE = forward

        certs = paths_for(data_dir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certs.server_cert, certs.server_key)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def lose_answer(self, method: str, path: str) -> None:
        """Loses the answer of the next `method` call whose path (without the query string) is `path`."""
        with self._lock:
            self._to_lose.append((method, path))

    def before(self, method: str, path: str, action: Callable[[], None]) -> None:
        """Runs `action` once, just before the next `method` call to `path` goes to the emulator."""
        with self._lock:
            self._before.append((method, path, action))

    def clear(self) -> None:
        with self._lock:
            self._to_lose.clear()
            self._before.clear()
            self.lost.clear()

    def _run_before(self, method: str, path: str) -> None:
        bare = path.split("?", 1)[0]
        with self._lock:
            found = next((b for b in self._before if b[:2] == (method, bare)), None)
            if found is not None:
                self._before.remove(found)
        if found is not None:
            found[2]()

    def _take(self, method: str, path: str) -> bool:
        bare = path.split("?", 1)[0]
        with self._lock:
            if (method, bare) in self._to_lose:
                self._to_lose.remove((method, bare))
                self.lost.append(f"{method} {bare}")
                return True
        return False

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._session.close()


@pytest.fixture(scope="module")
def proxy(emulator: EmulatorProcess, emulator_dir: Path) -> Iterator[LossyProxy]:
    lossy = LossyProxy(emulator, emulator_dir / "data")
    yield lossy
    lossy.close()


@pytest.fixture
def lossy_client(
    org: Any,
    proxy: LossyProxy,
    credentials: Credentials,
    settings: ConnectionSettings,
    clock: FakeClock,
    sleeps: Sleeps,
) -> SalesforceClient:
    """A client that logs in (and so calls) through the proxy."""
    proxy.clear()
    return SalesforceClient(
        credentials, dataclasses.replace(settings, login_url=proxy.url), clock=clock, sleep=sleeps
    )


# ------------------------------------------------------------------------------------------- helpers


def case_item(subject: str, instance: str, **fields: Any) -> ActionItem:
    return ActionItem((), {"Subject": subject, **fields}, dict(CASE_DEFAULTS), instance=instance)


@pytest.fixture
def three_alike(org: EmulatorProcess) -> tuple[str, str, str, str]:
    """Three Contacts sharing an email, the newest (by LastModifiedDate) seeded second, and one other."""
    return tuple(
        seed(
            org,
            "Contact",
            contact("Old", "dup@example.com", Title="t1", LastModifiedDate="2024-01-01T00:00:00.000Z"),
            contact("New", "dup@example.com", Title="t2", LastModifiedDate="2024-03-01T00:00:00.000Z"),
            contact("Mid", "DUP@example.com", Title="t3", LastModifiedDate="2024-02-01T00:00:00.000Z"),
            contact("Other", "other@example.com", Title="t4", LastModifiedDate="2024-04-01T00:00:00.000Z"),
        )
    )


# -------------------------------------------------------------------------------------------- create


def test_create_without_idempotency_field_creates_each_item(client: SalesforceClient, org: Any) -> None:
    items = [case_item("Login broken", "m-1", Priority="High"), case_item("Refund", "m-2")]
    outcomes = run_action(client, CREATE_CASE, items)
    ids = [o.record_ids[0] for o in outcomes]
    assert outcomes == [ActionOutcome("created", (ids[0],)), ActionOutcome("created", (ids[1],))]
    # create_defaults fill only what fields lack; without an idempotency field the instance is not written.
    assert stored(org, "Case", "Subject", "Priority", "Origin", "Beamforce_Message_Id__c") == [
        {
            "Id": ids[0],
            "Subject": "Login broken",
            "Priority": "High",
            "Origin": "Web",
            "Beamforce_Message_Id__c": None,
        },
        {
            "Id": ids[1],
            "Subject": "Refund",
            "Priority": "Low",
            "Origin": "Web",
            "Beamforce_Message_Id__c": None,
        },
    ]
    assert kinds(org) == {"collections": 1, "login": 1}


def test_create_with_idempotency_field_upserts_and_a_retried_batch_adds_nothing(
    client: SalesforceClient, org: Any
) -> None:
    items = [case_item("Login broken", "m-1"), case_item("Refund", "m-2")]
    first = run_action(client, CREATE_CASE_ONCE, items)
    ids = [o.record_ids[0] for o in first]
    assert first == [ActionOutcome("created", (ids[0],)), ActionOutcome("created", (ids[1],))]
    # The same batch again (a retried bundle): the upserts find the records and update them.
    assert run_action(client, CREATE_CASE_ONCE, items) == [
        ActionOutcome("updated", (ids[0],)),
        ActionOutcome("updated", (ids[1],)),
    ]
    assert stored(org, "Case", "Subject", "Beamforce_Message_Id__c") == [
        {"Id": ids[0], "Subject": "Login broken", "Beamforce_Message_Id__c": "m-1"},
        {"Id": ids[1], "Subject": "Refund", "Beamforce_Message_Id__c": "m-2"},
    ]
    assert kinds(org) == {"collections": 2, "login": 1}


def test_a_lost_create_without_idempotency_field_fails_retryably_and_is_not_resent(
    lossy_client: SalesforceClient, proxy: LossyProxy, org: Any, sleeps: Sleeps
) -> None:
    proxy.lose_answer("POST", f"{API_PATH}/composite/sobjects")
    outcomes = run_action(lossy_client, CREATE_CASE, [case_item("Login broken", "m-1")])
    assert outcomes == [
        ActionOutcome(
            "failed",
            (),
            "ConnectionError",
            "request to Salesforce failed; the create may have been applied, and action 'open_case' has no "
            "idempotency_field to make sending it again safe",
            retryable=True,
        )
    ]
    assert proxy.lost == [f"POST {API_PATH}/composite/sobjects"]
    # It was applied: one record, and no second call that would have made another.
    assert [r["Subject"] for r in stored(org, "Case", "Subject")] == ["Login broken"]
    assert (kinds(org), sleeps) == ({"collections": 1, "login": 1}, [])


def test_a_lost_create_with_idempotency_field_is_resent_safely(
    lossy_client: SalesforceClient, proxy: LossyProxy, org: Any, sleeps: Sleeps
) -> None:
    proxy.lose_answer("PATCH", f"{API_PATH}/composite/sobjects/Case/Beamforce_Message_Id__c")
    outcomes = run_action(lossy_client, CREATE_CASE_ONCE, [case_item("Login broken", "m-1")])
    [record] = stored(org, "Case", "Subject", "Beamforce_Message_Id__c")
    # The upsert sent again found the record the lost call created: Salesforce says it updated it.
    assert outcomes == [ActionOutcome("updated", (record["Id"],))]
    assert record == {"Id": record["Id"], "Subject": "Login broken", "Beamforce_Message_Id__c": "m-1"}
    assert proxy.lost == [f"PATCH {API_PATH}/composite/sobjects/Case/Beamforce_Message_Id__c"]
    assert (kinds(org), len(sleeps)) == ({"collections": 2, "login": 1}, 1)


def test_a_duplicate_rule_refusing_a_create_names_the_rule_and_the_record(
    client: SalesforceClient, org: Any
) -> None:
    [existing] = seed(org, "Lead", {"LastName": "Ada", "Company": "Acme", "Email": "ada@example.com"})
    spec = ActionSpec("new_lead", "Lead", "create")
    items = [
        ActionItem((), {"LastName": "Ada", "Company": "Acme", "Email": "ADA@example.com"}),
        ActionItem((), {"LastName": "Bob", "Company": "Acme", "Email": "bob@example.com"}),
    ]
    refused, created = run_action(client, spec, items)
    assert refused == ActionOutcome(
        "failed",
        (),
        "DUPLICATES_DETECTED",
        f"A lead with this email exists. (duplicate rule 'Lead_Email_Rule' matches existing Lead {existing})",
        retryable=False,
    )
    assert created == ActionOutcome("created", created.record_ids)
    assert stored(org, "Lead", "Email") == [
        {"Id": existing, "Email": "ada@example.com"},
        {"Id": created.record_ids[0], "Email": "bob@example.com"},
    ]


# -------------------------------------------------------------------------------------------- update


def set_title(on_multiple: str = "update_latest", match: tuple[str, ...] = ("Email",)) -> ActionSpec:
    return ActionSpec("set_title", "Contact", "update", match_fields=match, on_multiple=on_multiple)


def test_update_writes_the_one_match_and_never_its_create_defaults(
    client: SalesforceClient, org: Any
) -> None:
    ada, bob = seed(
        org, "Contact", contact("Ada", "ada@example.com", Title="Engineer"), contact("Bob", "b@x.io")
    )
    item = ActionItem(("ADA@example.com",), {"Title": "CTO"}, {"LeadSource": "Web"})
    assert run_action(client, set_title(), [item]) == [ActionOutcome("updated", (ada,))]
    assert stored(org, "Contact", "Title", "LeadSource") == [
        {"Id": ada, "Title": "CTO", "LeadSource": None},
        {"Id": bob, "Title": None, "LeadSource": None},
    ]
    assert kinds(org) == {"collections": 1, "login": 1, "query": 1}


def test_update_without_a_match_is_no_match_and_writes_nothing(client: SalesforceClient, org: Any) -> None:
    [ada] = seed(org, "Contact", contact("Ada", "ada@example.com", Title="Engineer"))
    outcomes = run_action(client, set_title(), [ActionItem(("nobody@example.com",), {"Title": "CTO"})])
    assert outcomes == [ActionOutcome("no_match")]
    assert stored(org, "Contact", "Title") == [{"Id": ada, "Title": "Engineer"}]
    assert kinds(org) == {"login": 1, "query": 1}


def test_update_latest_writes_the_newest_match_only(client: SalesforceClient, org: Any, three_alike) -> None:
    old, new, mid, other = three_alike
    outcomes = run_action(client, set_title(), [ActionItem(("dup@example.com",), {"Title": "CTO"})])
    assert outcomes == [ActionOutcome("updated", (new,), ambiguous=True)]
    assert stored(org, "Contact", "Title") == [
        {"Id": old, "Title": "t1"},
        {"Id": new, "Title": "CTO"},
        {"Id": mid, "Title": "t3"},
        {"Id": other, "Title": "t4"},
    ]
    assert kinds(org) == {"collections": 1, "login": 1, "query": 1}


def test_update_all_writes_every_match(client: SalesforceClient, org: Any, three_alike) -> None:
    old, new, mid, other = three_alike
    outcomes = run_action(client, set_title("all"), [ActionItem(("dup@example.com",), {"Title": "CTO"})])
    assert outcomes == [ActionOutcome("updated", (new, mid, old))]  # newest first
    assert stored(org, "Contact", "Title") == [
        {"Id": old, "Title": "CTO"},
        {"Id": new, "Title": "CTO"},
        {"Id": mid, "Title": "CTO"},
        {"Id": other, "Title": "t4"},
    ]
    assert kinds(org) == {"collections": 1, "login": 1, "query": 1}


def test_update_dead_letters_several_matches_and_writes_nothing(
    client: SalesforceClient, org: Any, three_alike
) -> None:
    old, new, mid, other = three_alike
    items = [
        ActionItem(("dup@example.com",), {"Title": "CTO"}),
        ActionItem(("other@example.com",), {"Title": "X"}),
    ]
    outcomes = run_action(client, set_title("dead_letter"), items)
    assert outcomes == [
        ActionOutcome(
            "failed",
            (new, mid, old),
            "MULTIPLE_MATCHES",
            f"3 Contact records match ({new}, {mid}, {old}); action 'set_title' dead-letters several matches "
            "(on_multiple: dead_letter)",
            retryable=False,
        ),
        ActionOutcome("updated", (other,)),
    ]
    assert stored(org, "Contact", "Title") == [
        {"Id": old, "Title": "t1"},
        {"Id": new, "Title": "t2"},
        {"Id": mid, "Title": "t3"},
        {"Id": other, "Title": "X"},
    ]


def test_dead_letter_alone_makes_no_write(client: SalesforceClient, org: Any, three_alike) -> None:
    run_action(client, set_title("dead_letter"), [ActionItem(("dup@example.com",), {"Title": "CTO"})])
    assert kinds(org) == {"login": 1, "query": 1}


def test_items_sharing_a_record_write_it_once_with_their_fields_merged(
    client: SalesforceClient, org: Any
) -> None:
    [ada] = seed(org, "Contact", contact("Ada", "ada@example.com"))
    items = [
        ActionItem(("ada@example.com",), {"Title": "Engineer", "Department": "R&D"}),
        ActionItem(("Ada@Example.com",), {"Title": "CTO"}),
    ]
    assert run_action(client, set_title(), items) == [ActionOutcome("updated", (ada,))] * 2
    assert stored(org, "Contact", "Title", "Department") == [{"Id": ada, "Title": "CTO", "Department": "R&D"}]
    assert kinds(org) == {"collections": 1, "login": 1, "query": 1}


def test_a_refused_update_fails_with_the_record_and_salesforces_error(
    client: SalesforceClient, org: Any
) -> None:
    ada, bob = seed(org, "Contact", contact("Ada", "ada@example.com"), contact("Bob", "bob@example.com"))
    long_title = "x" * 129
    items = [
        ActionItem(("ada@example.com",), {"Title": long_title}),
        ActionItem(("bob@example.com",), {"Title": "CTO"}),
    ]
    assert run_action(client, set_title(), items) == [
        ActionOutcome(
            "failed",
            (ada,),
            "STRING_TOO_LONG",
            f"Title: data value too large: {long_title} (max length=128)",
            retryable=False,
        ),
        ActionOutcome("updated", (bob,)),
    ]
    assert stored(org, "Contact", "Title") == [{"Id": ada, "Title": None}, {"Id": bob, "Title": "CTO"}]


def test_an_update_without_fields_makes_no_write(client: SalesforceClient, org: Any) -> None:
    [ada] = seed(org, "Contact", contact("Ada", "ada@example.com"))
    assert run_action(client, set_title(), [ActionItem(("ada@example.com",))]) == [
        ActionOutcome("updated", (ada,))
    ]
    assert kinds(org) == {"login": 1, "query": 1}


# ----------------------------------------------------------------------------------------- multi-field


def test_a_two_field_match_touches_only_records_matching_both(client: SalesforceClient, org: Any) -> None:
    both, email_only, name_only = seed(
        org,
        "Contact",
        contact("Smith", "a@example.com"),
        contact("Jones", "a@example.com"),
        contact("Smith", "b@example.com"),
    )
    spec = set_title(match=("Email", "LastName"))
    # The lookup's IN lists admit (a, Jones) and (b, Smith); only the exact combination counts.
    items = [
        ActionItem(("A@example.com", "smith"), {"Title": "CTO"}),
        ActionItem(("b@example.com", "Jones"), {"Title": "X"}),
    ]
    assert run_action(client, spec, items) == [ActionOutcome("updated", (both,)), ActionOutcome("no_match")]
    assert stored(org, "Contact", "Email", "LastName", "Title") == [
        {"Id": both, "Email": "a@example.com", "LastName": "Smith", "Title": "CTO"},
        {"Id": email_only, "Email": "a@example.com", "LastName": "Jones", "Title": None},
        {"Id": name_only, "Email": "b@example.com", "LastName": "Smith", "Title": None},
    ]
    assert kinds(org) == {"collections": 1, "login": 1, "query": 1}


def test_a_two_field_upsert_creates_with_both_match_values(client: SalesforceClient, org: Any) -> None:
    [jones] = seed(org, "Contact", contact("Jones", "a@example.com"))
    spec = ActionSpec("person", "Contact", "upsert", match_fields=("Email", "LastName"))
    [outcome] = run_action(client, spec, [ActionItem(("a@example.com", "Smith"), {"Title": "CTO"})])
    assert outcome == ActionOutcome("created", outcome.record_ids)
    assert stored(org, "Contact", "Email", "LastName", "Title") == [
        {"Id": jones, "Email": "a@example.com", "LastName": "Jones", "Title": None},
        {"Id": outcome.record_ids[0], "Email": "a@example.com", "LastName": "Smith", "Title": "CTO"},
    ]


# -------------------------------------------------------------------------------------------- upsert


def by_user_id() -> ActionSpec:
    return ActionSpec("user", "Contact", "upsert", match_fields=("UserId__c",))


def test_upsert_updates_a_match_and_creates_the_rest(client: SalesforceClient, org: Any) -> None:
    [ada] = seed(org, "Contact", contact("Ada", "ada@example.com", UserId__c="u-1"))
    defaults = {"LastName": "Unknown", "LeadSource": "Web"}
    items = [
        ActionItem(("U-1",), {"Title": "CTO"}, defaults),
        ActionItem(("u-2",), {"Title": "CEO"}, defaults),
        ActionItem(("u-3",), {"Title": "COO"}),  # no LastName: Salesforce refuses the create
    ]
    updated, created, refused = run_action(client, by_user_id(), items)
    assert (updated, created) == (
        ActionOutcome("updated", (ada,)),
        ActionOutcome("created", created.record_ids),
    )
    assert refused == ActionOutcome(
        "failed", (), "REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]", retryable=False
    )
    # create_defaults only on the create; the match value is written into the new record.
    assert stored(org, "Contact", "UserId__c", "LastName", "Title", "LeadSource") == [
        {"Id": ada, "UserId__c": "u-1", "LastName": "Ada", "Title": "CTO", "LeadSource": None},
        {
            "Id": created.record_ids[0],
            "UserId__c": "u-2",
            "LastName": "Unknown",
            "Title": "CEO",
            "LeadSource": "Web",
        },
    ]
    assert kinds(org) == {"collections": 2, "login": 1, "query": 1}


def test_a_lost_upsert_create_is_looked_up_not_resent(
    lossy_client: SalesforceClient, proxy: LossyProxy, org: Any, sleeps: Sleeps
) -> None:
    proxy.lose_answer("POST", f"{API_PATH}/composite/sobjects")
    item = ActionItem(("u-1",), {"Title": "CTO"}, {"LastName": "Unknown"})
    outcomes = run_action(lossy_client, by_user_id(), [item])
    [record] = stored(org, "Contact", "UserId__c", "LastName", "Title")
    assert outcomes == [ActionOutcome("created", (record["Id"],))]
    assert record == {"Id": record["Id"], "UserId__c": "u-1", "LastName": "Unknown", "Title": "CTO"}
    # lookup, create (answer lost), lookup again that finds it
    assert (kinds(org), len(sleeps)) == ({"collections": 1, "login": 1, "query": 2}, 1)


def test_an_upsert_whose_record_another_writer_created_meanwhile_updates_it(
    lossy_client: SalesforceClient, proxy: LossyProxy, org: Any
) -> None:
    created_meanwhile: list[str] = []
    proxy.before(
        "POST",
        f"{API_PATH}/composite/sobjects",
        lambda: created_meanwhile.extend(
            seed(org, "Contact", contact("Other", "o@example.com", UserId__c="u-1"))
        ),
    )
    outcomes = run_action(
        lossy_client, by_user_id(), [ActionItem(("u-1",), {"Title": "CTO"}, {"LastName": "New"})]
    )
    [other] = created_meanwhile
    assert outcomes == [ActionOutcome("updated", (other,))]
    assert stored(org, "Contact", "UserId__c", "Title") == [{"Id": other, "UserId__c": "u-1", "Title": "CTO"}]


def test_the_api_limit_running_out_after_the_updates_fails_the_creates_retryably(
    client: SalesforceClient, org: Any
) -> None:
    [ada] = seed(org, "Contact", contact("Ada", "ada@example.com", UserId__c="u-1"))
    client.login()
    org.admin("POST", "limits", json={"remaining": 2})  # the lookup and the update
    items = [
        ActionItem(("u-1",), {"Title": "CTO"}),
        ActionItem(("u-2",), {"Title": "CEO"}, {"LastName": "New"}),
    ]
    assert run_action(client, by_user_id(), items) == [
        ActionOutcome("updated", (ada,)),
        ActionOutcome(
            "failed", (), "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", retryable=True
        ),
    ]
    assert stored(org, "Contact", "UserId__c", "Title") == [{"Id": ada, "UserId__c": "u-1", "Title": "CTO"}]


def test_an_exhausted_api_limit_fails_every_item_retryably(client: SalesforceClient, org: Any) -> None:
    seed(org, "Contact", contact("Ada", "ada@example.com", UserId__c="u-1"))
    client.login()
    org.admin("POST", "limits", json={"remaining": 0})
    failed = ActionOutcome(
        "failed", (), "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", retryable=True
    )
    items = [ActionItem(("u-1",), {"Title": "CTO"}), ActionItem(("u-2",), {"Title": "CEO"})]
    assert run_action(client, by_user_id(), items) == [failed, failed]


# -------------------------------------------------------------------------------------------- delete


def remove(on_multiple: str = "update_latest") -> ActionSpec:
    return ActionSpec("forget", "Contact", "delete", match_fields=("Email",), on_multiple=on_multiple)


def test_delete_deletes_the_match_and_reports_no_match(client: SalesforceClient, org: Any) -> None:
    ada, bob = seed(org, "Contact", contact("Ada", "ada@example.com"), contact("Bob", "bob@example.com"))
    items = [ActionItem(("Ada@example.com",)), ActionItem(("nobody@example.com",))]
    assert run_action(client, remove(), items) == [
        ActionOutcome("deleted", (ada,)),
        ActionOutcome("no_match"),
    ]
    assert stored(org, "Contact") == [{"Id": bob}]
    assert kinds(org) == {"collections": 1, "login": 1, "query": 1}


def test_delete_without_a_match_makes_no_write(client: SalesforceClient, org: Any) -> None:
    [ada] = seed(org, "Contact", contact("Ada", "ada@example.com"))
    assert run_action(client, remove(), [ActionItem(("nobody@example.com",))]) == [ActionOutcome("no_match")]
    assert stored(org, "Contact") == [{"Id": ada}]
    assert kinds(org) == {"login": 1, "query": 1}


def test_delete_all_deletes_every_match(client: SalesforceClient, org: Any, three_alike) -> None:
    old, new, mid, other = three_alike
    outcomes = run_action(client, remove("all"), [ActionItem(("dup@example.com",))])
    assert outcomes == [ActionOutcome("deleted", (new, mid, old))]
    assert stored(org, "Contact") == [{"Id": other}]


def test_a_record_deleted_already_counts_as_deleted(
    lossy_client: SalesforceClient, proxy: LossyProxy, org: Any, sleeps: Sleeps
) -> None:
    [ada] = seed(org, "Contact", contact("Ada", "ada@example.com"))
    # The delete is carried out but its answer lost; sent again, it meets ENTITY_IS_DELETED.
    proxy.lose_answer("DELETE", f"{API_PATH}/composite/sobjects")
    assert run_action(lossy_client, remove(), [ActionItem(("ada@example.com",))]) == [
        ActionOutcome("deleted", (ada,))
    ]
    assert proxy.lost == [f"DELETE {API_PATH}/composite/sobjects"]
    assert stored(org, "Contact") == []
    assert (kinds(org), len(sleeps)) == ({"collections": 2, "login": 1, "query": 1}, 1)


# ---------------------------------------------------------------------------------------------- read


def look_up(on_multiple: str = "update_latest") -> ActionSpec:
    return ActionSpec(
        "look_up",
        "Contact",
        "read",
        match_fields=("Email",),
        on_multiple=on_multiple,
        read_fields=("Title", "phone", "UserId__c"),
    )


def test_read_returns_exactly_the_read_fields_of_the_match(client: SalesforceClient, org: Any) -> None:
    [ada] = seed(org, "Contact", contact("Ada", "ada@example.com", Title="CTO", Phone="+1 555 0100"))
    items = [ActionItem(("ada@example.com",)), ActionItem(("nobody@example.com",))]
    assert run_action(client, look_up(), items) == [
        ActionOutcome("read", (ada,), rows=({"Title": "CTO", "phone": "+1 555 0100", "UserId__c": None},)),
        ActionOutcome("no_match"),
    ]
    assert kinds(org) == {"login": 1, "query": 1}


@pytest.mark.parametrize("on_multiple", ["update_latest", "all", "dead_letter"])
def test_read_of_several_matches_follows_on_multiple(
    client: SalesforceClient, org: Any, three_alike, on_multiple: str
) -> None:
    old, new, mid, _ = three_alike
    [outcome] = run_action(client, look_up(on_multiple), [ActionItem(("dup@example.com",))])
    row = {"phone": None, "UserId__c": None}
    expected = {
        "update_latest": ActionOutcome("read", (new,), ambiguous=True, rows=({"Title": "t2", **row},)),
        "all": ActionOutcome(
            "read",
            (new, mid, old),
            rows=({"Title": "t2", **row}, {"Title": "t3", **row}, {"Title": "t1", **row}),
        ),
        "dead_letter": ActionOutcome(
            "failed",
            (new, mid, old),
            "MULTIPLE_MATCHES",
            f"3 Contact records match ({new}, {mid}, {old}); action 'look_up' dead-letters several matches "
            "(on_multiple: dead_letter)",
        ),
    }[on_multiple]
    assert outcome == expected
    assert kinds(org) == {"login": 1, "query": 1}


# ------------------------------------------------------------------------------------------- lookups


def test_a_few_hundred_items_cost_one_lookup(client: SalesforceClient, org: Any) -> None:
    ids = seed(
        org,
        "Contact",
        *(contact(f"P{i}", f"p{i}@example.com", UserId__c=f"user-{i:03d}") for i in range(300)),
    )
    spec = ActionSpec("title", "Contact", "update", match_fields=("UserId__c",))
    items = [
        ActionItem((f"USER-{i:03d}" if i % 2 else f"user-{i:03d}",), {"Title": f"T{i}"}) for i in range(300)
    ]
    items.append(ActionItem(("user-999",), {"Title": "nobody"}))
    outcomes = run_action(client, spec, items)
    assert outcomes == [ActionOutcome("updated", (record_id,)) for record_id in ids] + [
        ActionOutcome("no_match")
    ]
    assert [r["Title"] for r in stored(org, "Contact", "Title")] == [f"T{i}" for i in range(300)]
    assert kinds(org) == {"collections": 2, "login": 1, "query": 1}  # 200 + 100 records written


def test_lookups_too_long_for_one_uri_are_split(client: SalesforceClient, org: Any) -> None:
    keys = [f"user-{i:03d}-" + "k" * 60 for i in range(400)]
    ids = seed(
        org, "Contact", *(contact(f"P{i}", f"p{i}@example.com", UserId__c=k) for i, k in enumerate(keys))
    )
    spec = ActionSpec("title", "Contact", "update", match_fields=("UserId__c",))
    outcomes = run_action(client, spec, [ActionItem((k,), {"Title": "T"}) for k in keys])
    assert outcomes == [ActionOutcome("updated", (record_id,)) for record_id in ids]
    assert kinds(org) == {"collections": 2, "login": 1, "query": 2}


def test_match_queries_fit_the_uri_and_cover_each_combination_once() -> None:
    select = "SELECT Id FROM Contact"
    combos = [(f"a{i}@example.com", f"Name'{i}") for i in range(30)] + [("A0@EXAMPLE.COM", "name'0")]
    queries = match_queries(select, ("Email", "LastName"), combos, "/q?q=", max_url_bytes=600)
    assert [encoded_length(q, "/q?q=") <= 600 for q in queries] == [True, True, True]
    assert queries[0] == (
        "SELECT Id FROM Contact WHERE Email IN ("
        + ",".join(f"'a{i}@example.com'" for i in range(10))
        + ") AND LastName IN ("
        + ",".join(f"'Name\\'{i}'" for i in range(10))
        + ") ORDER BY LastModifiedDate DESC, Id DESC"
    )
    emails = [e for q in queries for e in q.split("Email IN (")[1].split(")")[0].split(",")]
    assert emails == [f"'a{i}@example.com'" for i in range(30)]  # the repeat in upper case is left out
    with pytest.raises(ValueError) as exc:
        match_queries(select, ("Email", "LastName"), [("x" * 300, "y" * 200)], "/q?q=", max_url_bytes=600)
    assert str(exc.value) == "match values of 500 characters do not fit in one query"


# -------------------------------------------------------------------------------- numeric match fields


def test_a_number_match_field_is_looked_up(client: SalesforceClient, org: Any) -> None:
    five, six = seed(
        org,
        "Contact",
        contact("Five", "5@example.com", Score__c=5),
        contact("Six", "6@example.com", Score__c=6),
    )
    spec = ActionSpec("by_score", "Contact", "update", match_fields=("Score__c",))
    # The describe says Score__c is a number: it is looked up unquoted; "five" cannot match one.
    items = [ActionItem(("5",), {"Title": "CTO"}), ActionItem(("five",), {"Title": "CEO"})]
    assert run_action(client, spec, items, client.describe("Contact")) == [
        ActionOutcome("updated", (five,)),
        ActionOutcome("no_match", ()),
    ]
    assert stored(org, "Contact", "Title") == [{"Id": five, "Title": "CTO"}, {"Id": six, "Title": None}]


@pytest.mark.parametrize(
    ("field", "stored_value", "event_value"),
    [
        ("Rate__c", 1.5, "1.50"),  # a number by its value
        ("Rate__c", 100, "1E+2"),
        ("Seen__c", "2026-01-01T00:00:00.000+0000", "2026-01-01T01:00:00+01:00"),  # the same instant
        ("Seen__c", "2026-01-01T00:00:00.000+0000", "2026-01-01T00:00:00Z"),
        ("Born__c", "1990-05-01", "1990-05-01"),
        ("Vip__c", True, "TRUE"),  # a checkbox, unquoted in the query
    ],
)
def test_a_match_value_compares_as_its_field_kind(
    client: SalesforceClient, org: Any, field: str, stored_value: Any, event_value: str
) -> None:
    [match] = seed(org, "Contact", contact("Kind", "kind@example.com", **{field: stored_value}))
    spec = ActionSpec("by_kind", "Contact", "update", match_fields=(field,))
    items = [ActionItem((event_value,), {"Title": "CTO"})]
    assert run_action(client, spec, items, client.describe("Contact")) == [ActionOutcome("updated", (match,))]
    assert stored(org, "Contact", "Title") == [{"Id": match, "Title": "CTO"}]


@pytest.mark.parametrize(
    ("value", "kind", "key"),
    [
        (" Ada@Example.com ", TEXT, "ada@example.com"),
        ("1.50", NUMBER, "1.5"),
        (1.5, NUMBER, "1.5"),
        ("100", NUMBER, "100"),
        (100.0, NUMBER, "100"),
        ("-0", NUMBER, "0"),
        ("five", NUMBER, None),
        ("NaN", NUMBER, None),
        ("2026-01-01T01:00:00+01:00", DATETIME, "2026-01-01T00:00:00+00:00"),
        ("2026-01-01T00:00:00.000+0000", DATETIME, "2026-01-01T00:00:00+00:00"),
        ("2026-01-01T00:00:00", DATETIME, None),  # no offset: no instant
        ("2026-01-01", DATE, "2026-01-01"),
        (True, BOOLEAN, "true"),
        ("False", BOOLEAN, "false"),
        ("yes", BOOLEAN, None),
    ],
)
def test_match_keys(value: Any, kind: str, key: str | None) -> None:
    assert match_key(value, kind) == key


def test_match_values_too_long_for_any_query_fail_alone(client: SalesforceClient, org: Any) -> None:
    [ada] = seed(org, "Contact", contact("Ada", "ada@example.com"))
    items = [
        ActionItem(("x" * 20_000,), {"Title": "CEO"}),
        ActionItem(("ada@example.com",), {"Title": "CTO"}),
    ]
    [too_long, updated] = run_action(client, set_title(), items)
    assert (too_long.action, too_long.error_code, too_long.retryable) == ("failed", "KEY_TOO_LONG", False)
    assert too_long.message.endswith("do not fit in one query: no Contact record can hold such values")
    assert updated == ActionOutcome("updated", (ada,))
    assert stored(org, "Contact", "Title") == [{"Id": ada, "Title": "CTO"}]


# ------------------------------------------------------------------------------------------- ActionSpec


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"operation": "merge", "match_fields": ("Email",)},
            "operation must be one of create, read, update, upsert, delete, not 'merge'",
        ),
        (
            {"operation": "update", "match_fields": ("Email",), "on_multiple": "first"},
            "on_multiple must be one of update_latest, all, dead_letter, not 'first'",
        ),
        (
            {"operation": "create", "match_fields": ("Email",)},
            "create takes no match fields; every other operation needs at least one",
        ),
        ({"operation": "delete"}, "create takes no match fields; every other operation needs at least one"),
    ],
)
def test_action_spec_refuses_what_cannot_run(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        ActionSpec("a", "Contact", **kwargs)
    assert str(exc.value) == message
