"""Writing one batch of merged records through a client: fitting, the upsert, waiting for the allocation.

No Beam here: a writer DoFn runs BatchWriter.write on worker threads and turns each BatchReport into
metrics and outputs on its own thread (Beam's metrics belong to the bundle's thread).
"""

import collections
import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from salesforce import actions_write, stopping
from salesforce.actions_write import ActionItem, ActionOutcome, ActionSpec, run_action
from salesforce.errors import (
    LOGIN_BLOCK_REASONS,
    ApiLimitExceeded,
    ApiUsageReserved,
    ConfigurationError,
    LoginBlock,
    SalesforceApiError,
    SalesforceLoginError,
    TransientError,
)
from salesforce.upsert import UpsertItem, UpsertOutcome, upsert_by_key, write_collections
from schemas.fields import FieldMeta, ObjectMeta
from schemas.records import MergedOp, is_read, split_match
from transforms import contact_mapping, fitting

# Fields of the org set-up in docs/org-setup.md: an External ID + Unique text field holding the
# normalized match key (creates become safe against a concurrent writer), and a long text area holding
# each field's last event time (replays and backfills never revert newer values). Events never write them.
KEY_FIELD = "Beamforce_Key__c"
TIMES_FIELD = "Beamforce_Field_Times__c"
RESERVED_FIELDS = frozenset({KEY_FIELD.lower(), TIMES_FIELD.lower()})

# Salesforce refuses to update a converted Lead; the upsert skips it instead of failing the batch, and
# reads where it went (the Contact it was converted to) so that the update can follow the person.
SKIP_FIELDS = {"Lead": "IsConverted"}
REDIRECT_FIELDS = {"Lead": "ConvertedContactId"}
CONVERTED_LEADS = ("contact", "dead_letter")

# Failures that mean "the org's API allocation is used up (or reserved for other integrations)".
LIMIT_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED", "API_USAGE_RESERVED"})
ON_API_LIMIT = ("wait", "dead_letter")
# While waiting for the org's API allocation, its limits are read again after this long, doubling up to
# MAX_LIMIT_POLL_SECONDS: a bounded interval, and few calls spent asking.
LIMIT_POLL_SECONDS = 5.0
MAX_LIMIT_POLL_SECONDS = 300.0
# Gauges "login_paused:<reason>" (LOGIN_BLOCK_REASONS): 1 while a writer holds records because the org
# refuses its login for that reason (see BatchWriter), for progress lines.
LOGIN_PAUSED_PREFIX = "login_paused:"

_log = logging.getLogger(__name__)
# The writers of this process, so that a local runner's progress line can say at once why one pauses.
_writers: "weakref.WeakSet[BatchWriter]" = weakref.WeakSet()


def login_paused(reason: str) -> str:
    """The gauge that is 1 while writers pause because their login is refused for `reason`."""
    if reason not in LOGIN_BLOCK_REASONS:
        raise ValueError(f"unknown login block {reason!r}: one of {', '.join(LOGIN_BLOCK_REASONS)}")
    return LOGIN_PAUSED_PREFIX + reason


def paused_logins() -> set[str]:
    """Why writers of this process pause for their login now (LOGIN_BLOCK_REASONS), if they do."""
    return set().union(*(writer.paused_for_login() for writer in list(_writers)))


class _LoginBlocked(Exception):
    """The login was refused for a cause an administrator fixes, and this writer waits for it."""

    def __init__(self, error: SalesforceLoginError, block: LoginBlock):
        super().__init__(str(error))
        self.error = error
        self.block = block


# The objects docs/org-setup.md sets up (KEY_FIELD, TIMES_FIELD): a run says when they lack the fields.
SETUP_OBJECTS = frozenset({"Lead", "Account"})


@dataclass(frozen=True)
class WritePolicy:
    """What writers do beyond the classic upsert by one match field: custom actions done by
    salesforce/actions_write.py (an op whose action is not among them is an upsert on its one match field,
    as identify -> Lead is), and where identifies for converted Leads go (CONVERTED_LEADS)."""

    actions: tuple[ActionSpec, ...] = ()
    converted_leads: str = "contact"
    # The describes read when the job started (the actions file's check): the writers start with them.
    describes: tuple[ObjectMeta, ...] = ()

    def __post_init__(self) -> None:
        if self.converted_leads not in CONVERTED_LEADS:
            raise ValueError(
                f"converted_leads must be one of {', '.join(CONVERTED_LEADS)}, not {self.converted_leads!r}"
            )


class WrittenRecord(NamedTuple):
    """One record created, updated, deleted or read (or none matched), and how many events went into it.

    `action` is what was done: "created", "updated", "deleted", "read", "no_match" (an update, delete or
    read whose match found nothing: no call) or "updated_converted" (an identify for a converted Lead
    written to the Contact it became: `sobject` is then "Contact"). A read's records are in `rows`, and
    `instance` is its event's messageId. `action_name` is the custom action's name ("" on the classic path).
    `records` is how many Salesforce records it touched: more than one for an action with `on_multiple:
    all` whose match found several (`record_id` is then the first).
    """

    sobject: str
    match_value: str
    action: str
    record_id: str | None
    events: int
    ambiguous: bool = False
    action_name: str = ""
    instance: str = ""
    rows: tuple = ()
    records: int = 1


class Failure(NamedTuple):
    """Why one record was not written: the reason (a pipeline reason or Salesforce's code) and message."""

    reason: str
    message: str
    retryable: bool = True


class FittedItem(NamedTuple):
    item: UpsertItem | None  # None when the record cannot be written (see `error`)
    notes: dict[str, tuple[str, ...]]  # counter kind -> field names (trimmed, dropped_unknown, ...)
    error: tuple[str, str] | None = None  # (reason, message) of a record that must not be sent


@dataclass
class BatchReport:
    """What became of a batch, and what the writer should count for it."""

    results: list[tuple[MergedOp, WrittenRecord | Failure]] = field(default_factory=list)
    field_notes: list[tuple[str, dict[str, tuple[str, ...]]]] = field(
        default_factory=list
    )  # (sObject, notes)
    stale_fields: int = 0
    ambiguous: list[str] = field(default_factory=list)  # sObject of each record several records matched
    setup_missing: set[str] = field(default_factory=set)  # "Object.Field" of docs/org-setup.md missing
    limit_waited_seconds: float = 0.0
    login_waited_seconds: float = 0.0  # time the batch waited for the org to accept the login again
    # a dry run's writes, as salesforce/dry_run.py plans them
    planned: list[dict] = field(default_factory=list)


def fit_item(op: MergedOp, meta: ObjectMeta) -> FittedItem:
    """Fits one merged operation to the org's fields, for update and for create.

    `fields` are what an update may write; create-only values (the op's create_defaults and any
    field that is createable but not updateable) go to `create_defaults`, which the upsert only
    writes on create and never over a value in `fields`. A create default fills a field only when
    fitting left it without a usable value: a Company that is a list is dropped, and 'n/a' still
    gives Salesforce the value it requires. A match value longer than its field gives no item but an
    `error`: trimmed, it would write a record that no later lookup finds.

    The fields are fitted as fitting.fit_fields fits them for either a create or an update (each value by
    fitting.fit_field_value), and its reports are the notes (tests/unit/test_fit_item.py holds it to that
    rule), in one pass over them: a backfill fits every record it writes. The benchmark's 89,989 Leads
    took 24-28 us each as fit_fields, a split and a second lookup of every field, 15 us in one pass (in
    process, two rounds each).
    """
    for match_field, match_value in zip(*split_match(op.match_field, op.match_value), strict=True):
        too_long = fitting.match_value_too_long(match_field, match_value, meta)
        if too_long:
            return FittedItem(None, {}, ("STRING_TOO_LONG", f"{op.sobject}.{too_long}"))
    by_name = meta.fields  # lower-cased name -> FieldMeta
    fit_field_value, dropped = fitting.fit_field_value, fitting.DROPPED
    for_update: dict[str, Any] = {}
    create_only: dict[str, Any] = {}
    written: set[str] = set()  # fields a create writes from the event, lower-cased
    reserved: list[str] = []
    readonly: list[str] = []
    unknown: list[str] = []
    wrong_type: list[str] = []
    trimmed: list[str] = []
    converted: list[str] = []
    unreported: list[str] = []
    known: dict[str, FieldMeta] = {}  # the op's names -> their fields, for field_times
    for name, value in op.fields.items():
        lower = name.lower()
        if lower in RESERVED_FIELDS:
            reserved.append(name)
            continue
        meta_field = by_name.get(lower)
        if meta_field is None:
            unknown.append(name)
            continue
        known[name] = meta_field
        if not (meta_field.createable or meta_field.updateable):
            readonly.append(meta_field.name)
            continue
        value = fit_field_value(value, meta_field, converted, trimmed, wrong_type)
        if value is dropped:
            continue
        if meta_field.updateable:
            for_update[meta_field.name] = value
        else:
            create_only[meta_field.name] = value
        if meta_field.createable:
            written.add(lower)
    for name, value in op.create_defaults.items():
        lower = name.lower()
        if lower in written:
            continue
        meta_field = by_name.get(lower)
        if meta_field is None or not meta_field.createable:
            continue
        # Fitted for a create, as fit_fields(..., for_create=True) would; what fitting did to a default is
        # not reported.
        value = fit_field_value(value, meta_field, unreported, unreported, unreported)
        if value is not dropped:
            create_only[meta_field.name] = value
    notes = {
        "trimmed": _once(trimmed),
        "converted": _once(converted),
        "dropped_type": _once(wrong_type),
        "dropped_unknown": _once(unknown),
        # A field is only reported as read-only when neither a create nor an update may write it.
        "dropped_readonly": (*reserved, *readonly),
    }
    times = {}
    for name, time_ in op.field_times.items():
        meta_field = known.get(name) or by_name.get(name.lower())
        if meta_field is not None:
            times[meta_field.name] = time_
    return FittedItem(UpsertItem(op.match_value, for_update, create_only, field_times=times), notes)


def _once(names: list[str]) -> tuple[str, ...]:
    """`names` without repeats, in order (a field is named once per spelling the op used)."""
    return tuple(dict.fromkeys(names)) if len(names) > 1 else tuple(names)


def org_setup_fields(meta: ObjectMeta) -> tuple[str | None, str | None]:
    """The key and times fields of docs/org-setup.md as the org names them, or None where missing.

    The key field only counts when it is an External ID and Unique: without Salesforce's uniqueness
    it would protect nothing.
    """
    key = meta.get(KEY_FIELD)
    times = meta.get(TIMES_FIELD)
    key_name = key.name if key is not None and key.external_id and key.unique else None
    times_name = times.name if times is not None and times.createable and times.updateable else None
    return key_name, times_name


def all_failed(ops: list[MergedOp], reason: str, message: str, retryable: bool = True):
    # Nothing in the batch was written (or it was, and a replay finds and updates it, never creating
    # twice): every event is handed back.
    failure = Failure(reason, message, retryable)
    return [(op, failure) for op in ops]


class BatchWriter:
    """Writes batches through one client (shared by the threads that call write(); the client is
    thread-safe). `on_api_limit` "wait" holds records refused for the org's API allocation and tries
    them again once its limits say calls are left; "dead_letter" hands them back as failures.

    With "wait", a login refused for a cause the org's administrator fixes (an expired password, a
    locked user, an IP restriction, a revoked refresh token, an unapproved connected app: LoginBlock)
    holds the batch too: one thread at a time waits a growing interval, reads the credentials again
    (`reload_credentials`, e.g. a mounted secret updated meanwhile) and tries to log in; the others wait
    for its answer. Other refused logins dead-letter the batch, as with "dead_letter".
    """

    def __init__(
        self,
        client: Any,
        on_api_limit: str = "dead_letter",
        limit_poll_seconds: float = LIMIT_POLL_SECONDS,
        sleep: Callable[[float], None] = stopping.sleep,
        batch_deadline_seconds: float | None = None,
        reload_credentials: Callable[[], Any] | None = None,
        policy: WritePolicy | None = None,
    ) -> None:
        if on_api_limit not in ON_API_LIMIT:
            raise ValueError(f"on_api_limit must be one of {', '.join(ON_API_LIMIT)}, not {on_api_limit!r}")
        policy = policy or WritePolicy()
        self._converted_leads = policy.converted_leads
        # Each action also knows how its object's converted records are treated: passed over, followed.
        self._actions = {
            spec.name: replace(
                spec,
                skip_field=SKIP_FIELDS.get(spec.sobject),
                redirect_field=self.redirect_field(spec.sobject),
            )
            for spec in policy.actions
        }
        self._client = client
        prime = getattr(client, "prime_describe", None)
        for meta in policy.describes if prime is not None else ():
            prime(meta)
        self._on_api_limit = on_api_limit
        self._limit_poll_seconds = limit_poll_seconds
        self._sleep = sleep
        self._deadline_seconds = batch_deadline_seconds
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        # Whether the client holds a session; a writer that could not log in tries again per batch.
        self.logged_in = False
        self._reload_credentials = reload_credentials
        self._login_probe = threading.Lock()  # held by the one thread that waits out a refused login
        self._login_lock = threading.Lock()  # held while logging in: threads that write at once log in once
        self._login_pauses: collections.Counter[str] = collections.Counter()  # reason -> batches held
        self._login_tries = 0  # logins refused in a row while batches are held
        _writers.add(self)

    def _log_in(self) -> None:
        """Logs in unless the client holds a session: once for all the threads that write at once."""
        if self.logged_in:
            return
        with self._login_lock:
            if not self.logged_in:
                self._client.login()
                self.logged_in = True

    def paused_for_login(self) -> set[str]:
        """The reasons (LOGIN_BLOCK_REASONS) for which batches are held now, waiting to log in."""
        with self._lock:
            return {reason for reason, held in self._login_pauses.items() if held > 0}

    def write(self, batch: list[MergedOp]) -> BatchReport:
        report = BatchReport()
        by_match: dict[tuple[str, str, str], list[MergedOp]] = {}
        for op in batch:
            by_match.setdefault((op.sobject, op.match_field, op.action), []).append(op)
        # Reads last: one whose record is created or changed in this batch reads it as written.
        for (sobject, match_field, _), ops in sorted(
            by_match.items(), key=lambda group: is_read(group[1][0])
        ):
            self._write_waiting(sobject, match_field, ops, report)
        drain = getattr(self._client, "drain_plan", None)  # a dry run's client (salesforce/dry_run.py)
        if drain is not None:
            report.planned = drain()
        return report

    def _write_waiting(
        self, sobject: str, match_field: str, ops: list[MergedOp], report: BatchReport
    ) -> None:
        pending = ops
        waited = 0
        paused: str | None = None  # why this batch is held for its login, while it is
        try:
            while True:
                try:
                    results = self._attempt(sobject, match_field, pending, report)
                except _LoginBlocked as blocked:
                    block: LoginBlock | None = blocked.block
                    while block is not None:
                        paused = self._count_pause(paused, block.reason)
                        block = self._wait_to_log_in(block, len(pending), report)
                    continue
                if self._on_api_limit != "wait":
                    report.results.extend(results)
                    return
                held = []
                for op, result in results:
                    if isinstance(result, Failure) and result.reason in LIMIT_CODES:
                        held.append(op)
                    else:
                        report.results.append((op, result))
                if not held:
                    return
                pending = held
                delay = min(self._limit_poll_seconds * (2 ** min(waited, 6)), MAX_LIMIT_POLL_SECONDS)
                waited += 1
                _log.warning(
                    "the org's API allocation is used up (or reserved): holding %d records (the source "
                    "keeps the rest), checking its limits again in %.0f s",
                    len(held),
                    delay,
                )
                self._sleep(delay)
                report.limit_waited_seconds += delay
                self._refresh_api_usage()
        finally:
            self._count_pause(paused, None)

    def _count_pause(self, before: str | None, now: str | None) -> str | None:
        """Moves this batch's pause from reason `before` to `now` (None: not paused)."""
        if before != now:
            with self._lock:
                if before is not None:
                    self._login_pauses[before] -= 1
                if now is not None:
                    self._login_pauses[now] += 1
        return now

    def _wait_to_log_in(self, block: LoginBlock, held: int, report: BatchReport) -> LoginBlock | None:
        """One thread waits out a growing interval, reads the credentials again and tries to log in; the
        other held batches wait for its answer rather than each spending a login (failed logins add up
        to a lockout, and Salesforce may block an address that keeps failing). Returns the block still in
        force, or None once the batch may be tried again (logged in, or refused for another cause, which
        the next attempt reports)."""
        with self._login_probe:
            if self.logged_in:  # another thread logged in while this one waited for it
                return None
            delay = min(self._limit_poll_seconds * (2 ** min(self._login_tries, 6)), MAX_LIMIT_POLL_SECONDS)
            self._login_tries += 1
            _log.warning(
                "Salesforce refuses the login: %s. Holding %d records (the source keeps the rest), logging "
                "in again in %.0f s. To fix: %s",
                block.summary,
                held,
                delay,
                block.fix,
            )
            self._sleep(delay)
            report.login_waited_seconds += delay
            self._reload()
            try:
                self._client.login()
            except SalesforceLoginError as e:
                _log.info("the login is still refused (%s)", e.code)
                return e.block
            except TransientError as e:
                _log.info("the login did not get an answer (%s)", e.error_code)
                return block
            self.logged_in = True
            self._login_tries = 0
            _log.warning("Salesforce accepts the login again: writing the records held")
            return None

    def _reload(self) -> None:
        """Takes the credentials as the worker reads them now (a rotated secret), if they changed."""
        if self._reload_credentials is None:
            return
        try:
            credentials = self._reload_credentials()
        except ConfigurationError as e:  # its message names what is wrong, never a secret
            _log.warning("cannot read the Salesforce credentials again: %s", e)
            return
        if credentials != getattr(self._client, "credentials", credentials):
            self._client.credentials = credentials
            _log.warning("the Salesforce credentials changed: logging in with the new ones")

    def _refresh_api_usage(self) -> None:
        refresh = getattr(self._client, "refresh_api_usage", None)
        if refresh is None:
            return
        try:
            refresh()
        except Exception as e:  # still exhausted, or unreachable: the next attempt will tell
            _log.info("could not read the org's limits: %s", type(e).__name__)

    def _setup_fields(
        self, sobject: str, meta: ObjectMeta, report: BatchReport
    ) -> tuple[str | None, str | None]:
        key_field, times_field = org_setup_fields(meta)
        for wanted, found in ((KEY_FIELD, key_field), (TIMES_FIELD, times_field)):
            if found is not None or sobject not in SETUP_OBJECTS:
                # Other objects (custom actions) use the fields when they have them; docs/org-setup.md
                # asks for them on Lead and Account only.
                continue
            name = f"{sobject}.{wanted}"
            report.setup_missing.add(name)
            with self._lock:
                if name in self._warned:
                    continue
                self._warned.add(name)
            _log.warning(
                "%s is missing or not set up as docs/org-setup.md says: %s",
                name,
                "concurrent jobs may create duplicates"
                if wanted == KEY_FIELD
                else "a replay or backfill of older events may revert newer values",
            )
        return key_field, times_field

    def _attempt(
        self, sobject: str, match_field: str, ops: list[MergedOp], report: BatchReport
    ) -> list[tuple[MergedOp, WrittenRecord | Failure]]:
        """Writes `ops` (one sObject, match field and action): (op, WrittenRecord or Failure) for each op."""
        client = self._client
        if self._deadline_seconds is not None and hasattr(client, "deadline"):
            client.deadline = time.monotonic() + self._deadline_seconds
        try:
            self._log_in()
            meta = client.describe(sobject)
            fitted = [fit_item(op, meta) for op in ops]
            sendable = [(op, f) for op, f in zip(ops, fitted, strict=True) if f.item is not None]
            spec = self._actions.get(ops[0].action)
            if not sendable:
                sent = []
            elif spec is not None:
                sent = self._run_action(spec, sendable, meta, report)
            else:
                sent = self._upsert(sobject, match_field, meta, sendable, report)
        # The writes turn the API limit (and the governor's ApiUsageReserved), exhausted retries and
        # refused calls into failures per record; they raise only SalesforceLoginError. The other handlers
        # are for describe() and its login.
        except SalesforceLoginError as e:
            self.logged_in = False
            if e.block is not None and self._on_api_limit == "wait":
                raise _LoginBlocked(e, e.block) from None
            return all_failed(ops, "login_failed", str(e))
        except ApiLimitExceeded as e:
            message = (
                e.message
                if isinstance(e, ApiUsageReserved)
                else f"The org's API request limit is exhausted: {e}"
            )
            return all_failed(ops, e.error_code, message)
        except TransientError as e:  # no metadata read earlier to fall back on
            return all_failed(ops, "transient_error", f"Salesforce did not answer in time: {e}")
        except SalesforceApiError as e:
            # E.g. the user may not read this object: no retry helps until the org is changed.
            return all_failed(ops, e.error_code, str(e), retryable=False)
        results: list[tuple[MergedOp, WrittenRecord | Failure]] = [
            (op, Failure(*f.error, retryable=False)) for op, f in zip(ops, fitted, strict=True) if f.error
        ]
        for (op, f), result in zip(sendable, sent, strict=True):
            if any(f.notes.values()):
                report.field_notes.append((sobject, f.notes))
            results.append((op, result))
        return results

    def _upsert(
        self,
        sobject: str,
        match_field: str,
        meta: ObjectMeta,
        sendable: list[tuple[MergedOp, FittedItem]],
        report: BatchReport,
    ) -> list[WrittenRecord | Failure]:
        """The classic path: create or update by one match field (BulkWriter overrides the call)."""
        key_field, times_field = self._setup_fields(sobject, meta, report)
        outcomes = self._upsert_call(
            sobject, match_field, [f.item for _, f in sendable], key_field, times_field, meta
        )
        results = [
            self._result_of(op, outcome, report) for (op, _), outcome in zip(sendable, outcomes, strict=True)
        ]
        self._follow_conversions(sendable, outcomes, results, report)
        return results

    def _upsert_call(
        self,
        sobject: str,
        match_field: str,
        items: list[UpsertItem],
        key_field: str | None,
        times_field: str | None,
        meta: ObjectMeta,
    ) -> list[UpsertOutcome]:
        return upsert_by_key(
            self._client,
            sobject,
            match_field,
            items,
            SKIP_FIELDS.get(sobject),
            key_field=key_field,
            times_field=times_field,
            redirect_field=self.redirect_field(sobject),
        )

    def redirect_field(self, sobject: str) -> str | None:
        """The field a converted record's lookup also reads, to follow it (--converted_leads contact)."""
        return REDIRECT_FIELDS.get(sobject) if self._converted_leads == "contact" else None

    def _follow_conversions(
        self,
        sendable: list[tuple[MergedOp, FittedItem]],
        outcomes: list[UpsertOutcome] | list[ActionOutcome],
        results: list[WrittenRecord | Failure],
        report: BatchReport,
    ) -> None:
        """Sends each converted Lead's update to the Contact it was converted to, in the Contact's fields.
        Outcomes carry where a Lead went only with --converted_leads contact (redirect_field)."""
        follow = [
            i for i, o in enumerate(outcomes) if o.action == "skipped_converted" and o.redirect_id is not None
        ]
        if not follow:
            return
        meta = self._client.describe(contact_mapping.SOBJECT)
        records: dict[str, dict] = {}
        for i in follow:
            op = sendable[i][0]
            contact = contact_mapping.contact_op(op)
            fitted = fit_item(contact, meta)
            if any(fitted.notes.values()):
                report.field_notes.append((contact_mapping.SOBJECT, fitted.notes))
            fields = dict(fitted.item.fields) if fitted.item is not None else {}
            records[str(i)] = {"Id": outcomes[i].redirect_id, **fields}
        written = write_collections(self._client, contact_mapping.SOBJECT, self._client.update_many, records)
        for i in follow:
            op, outcome = sendable[i][0], outcomes[i]
            if str(i) in written.ok:
                results[i] = WrittenRecord(
                    contact_mapping.SOBJECT,
                    op.match_value,
                    "updated_converted",
                    outcome.redirect_id,
                    op.events,
                    action_name=op.action,
                )
            else:
                code, message, retryable = written.failed[str(i)]
                results[i] = Failure(
                    code,
                    f"the {op.sobject} {outcome.record_id} was converted to Contact {outcome.redirect_id}, "
                    f"whose update failed: {message}",
                    retryable,
                )

    def _run_action(
        self,
        spec: ActionSpec,
        sendable: list[tuple[MergedOp, FittedItem]],
        meta: ObjectMeta,
        report: BatchReport,
    ) -> list[WrittenRecord | Failure]:
        items = []
        for op, f in sendable:
            assert f.item is not None
            _, values = split_match(op.match_field, op.match_value)
            items.append(ActionItem(values, f.item.fields, f.item.create_defaults, op.instance))
        outcomes = run_action(self._client, spec, items, meta)
        results = [
            _action_result(op, outcome, spec, report)
            for (op, _), outcome in zip(sendable, outcomes, strict=True)
        ]
        self._follow_conversions(sendable, outcomes, results, report)
        return results

    @staticmethod
    def _result_of(op: MergedOp, outcome: UpsertOutcome, report: BatchReport) -> WrittenRecord | Failure:
        sobject = op.sobject
        if outcome.ambiguous:
            report.ambiguous.append(sobject)
        report.stale_fields += len(outcome.stale_fields)
        if outcome.action in ("created", "updated"):
            return WrittenRecord(
                sobject,
                op.match_value,
                outcome.action,
                outcome.record_id,
                op.events,
                outcome.ambiguous,
                action_name=op.action,
            )
        if outcome.action == "skipped_converted":
            return Failure("lead_converted", _converted_message(op, outcome), retryable=False)
        return _refused(outcome)


def _refused(outcome: UpsertOutcome | ActionOutcome, prefix: str = "") -> Failure:
    """A record Salesforce refused, with its code and message (defaults when it gave none)."""
    reason = outcome.error_code or "UNKNOWN_EXCEPTION"
    message = outcome.message or "Salesforce rejected the record without a message"
    return Failure(reason, prefix + message, retryable=outcome.retryable)


def _converted_message(op: MergedOp, outcome: UpsertOutcome | ActionOutcome) -> str:
    fields, values = split_match(op.match_field, op.match_value)
    matched = " and ".join(f"{f}={v!r}" for f, v in zip(fields, values, strict=True))
    return (
        f"The {op.sobject} {outcome.record_id} matching {matched} was converted; Salesforce refuses updates "
        "to converted Leads"
        + (
            f" (converted to Contact {outcome.redirect_id}; --converted_leads contact updates it)"
            if outcome.redirect_id
            else ""
        )
    )


def _action_result(
    op: MergedOp, outcome: ActionOutcome, spec: ActionSpec, report: BatchReport
) -> WrittenRecord | Failure:
    if outcome.action == actions_write.SKIPPED_CONVERTED:
        return Failure("lead_converted", f"action {spec.name!r}: {_converted_message(op, outcome)}", False)
    if outcome.action == actions_write.FAILED:
        return _refused(outcome, f"action {spec.name!r}: ")
    if outcome.ambiguous:
        report.ambiguous.append(op.sobject)
    return WrittenRecord(
        op.sobject,
        op.match_value,
        outcome.action,
        outcome.record_id,
        op.events,
        outcome.ambiguous,
        action_name=spec.name,
        instance=op.instance,
        rows=outcome.rows,
        records=max(1, len(outcome.record_ids)),
    )
