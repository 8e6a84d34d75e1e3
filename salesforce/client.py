"""The Salesforce client the pipeline uses: login, cached describe, SOQL paging, batched writes."""

import logging
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession

from salesforce import stopping
from salesforce.connection import ConnectionSettings
from salesforce.credentials import Credentials
from salesforce.errors import (
    ApiLimitExceeded,
    SalesforceApiError,
    SalesforceLoginError,
    TransientError,
    is_retryable,
)
from salesforce.governor import ApiUsage, TokenBucket, UsageGovernor, parse_limit_info
from salesforce.login import UNTRUSTED_CERTIFICATE, LoginTransientError, rest_client, soap_session_login
from schemas.fields import ObjectMeta

log = logging.getLogger(__name__)

T = TypeVar("T")

COLLECTION_SIZE = 200  # sObject Collections take at most 200 records a request
# The adaptive throttler is asked again after this long, for at most MAX_THROTTLE_SECONDS per call: it
# only shapes the rate, the retries and the deadline decide when to give up.
THROTTLE_STEP_SECONDS = 0.5
MAX_THROTTLE_SECONDS = 30.0
MAX_BACKOFF_SECONDS = 60.0
# A session that is rejected right after a fresh login will not get better by logging in again.
MAX_SESSION_RENEWALS = 2
_SOBJECT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# A record id is 15 or 18 letters and digits; anything else (a comma above all) would change the ids= list.
_RECORD_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
DUPLICATES_DETECTED = "DUPLICATES_DETECTED"


class Throttler(Protocol):
    """Client-side adaptive throttling, as apache_beam.io.components.adaptive_throttler provides it."""

    def throttle_request(self, now_ms: float) -> bool: ...

    def successful_request(self, now_ms: float) -> None: ...


@dataclass(frozen=True)
class SaveResult:
    """One record's result from sObject Collections, in request order.

    A save refused by a duplicate rule (DUPLICATES_DETECTED) names the rule and the existing records it
    matched, in `duplicate_rule` and `duplicate_ids` and in its message, so that a dead letter built
    from the message says which record the event duplicates.
    """

    id: str | None
    success: bool
    # {"statusCode", "message", "fields"}; a DUPLICATES_DETECTED message is completed with the rule and ids
    errors: tuple[dict, ...] = ()
    created: bool | None = None  # upserts only: whether the record was created
    duplicate_rule: str | None = None
    duplicate_ids: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "SaveResult":
        errors = []
        duplicate_rule: str | None = None
        duplicate_ids: tuple[str, ...] = ()
        duplicate_seen = False
        for e in d.get("errors") or ():
            code = e.get("statusCode") or e.get("errorCode") or "UNKNOWN_EXCEPTION"
            message = e.get("message") or ""
            # Some captured REST answers spell the key "duplicateResut".
            found = e.get("duplicateResult") or e.get("duplicateResut")
            if code == DUPLICATES_DETECTED and isinstance(found, dict):
                rule, sobject, ids = _duplicates(found)
                if not duplicate_seen:  # the first rule that refused, as error_code is the first code
                    duplicate_seen, duplicate_rule, duplicate_ids = True, rule, ids
                message = _duplicate_message(message or found.get("errorMessage") or "", rule, sobject, ids)
            errors.append({"statusCode": code, "message": message, "fields": list(e.get("fields") or [])})
        created = d.get("created")
        return cls(
            id=d.get("id"),
            success=bool(d.get("success")),
            errors=tuple(errors),
            created=created if isinstance(created, bool) else None,
            duplicate_rule=duplicate_rule,
            duplicate_ids=duplicate_ids,
        )

    @property
    def error_code(self) -> str | None:
        return self.errors[0]["statusCode"] if self.errors else None

    @property
    def message(self) -> str | None:
        return "; ".join(e["message"] for e in self.errors) if self.errors else None


def _duplicates(found: dict[str, Any]) -> tuple[str | None, str | None, tuple[str, ...]]:
    """(rule, object, ids of the existing records) of a DuplicateResult."""
    rule = found.get("duplicateRule")
    sobject = found.get("duplicateRuleEntityType")
    ids: list[str] = []
    for match in found.get("matchResults") or ():
        if not isinstance(match, dict):
            continue
        sobject = sobject or match.get("entityType")
        for record in match.get("matchRecords") or ():
            fields = record.get("record") if isinstance(record, dict) else None
            record_id = fields.get("Id") if isinstance(fields, dict) else None
            if isinstance(record_id, str) and record_id not in ids:
                ids.append(record_id)
    return (str(rule) if rule else None), (str(sobject) if sobject else None), tuple(ids)


def _duplicate_message(message: str, rule: str | None, sobject: str | None, ids: tuple[str, ...]) -> str:
    """`Use one of these records? (duplicate rule 'R' matches existing Lead 00Q…)`."""
    detail = f"duplicate rule '{rule}'" if rule else "a duplicate rule"
    if ids:
        detail += f" matches existing {sobject or 'record'} {', '.join(ids)}"
    return f"{message} ({detail})" if message else detail


@dataclass(frozen=True)
class _Failure:
    code: str
    message: str
    maybe_applied: bool  # the request may have been carried out before it failed


def _error_details(exc: SalesforceError) -> tuple[int, str, str]:
    """(status, errorCode, message) of a REST error; never the URL, which may carry a query's values."""
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        first = content[0]
        code = str(first.get("errorCode") or first.get("statusCode") or f"HTTP_{exc.status}")
        return exc.status, code, str(first.get("message") or "")
    if isinstance(content, dict):
        code = str(content.get("errorCode") or content.get("error") or f"HTTP_{exc.status}")
        return exc.status, code, str(content.get("message") or content.get("error_description") or "")
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content or "")
    return exc.status, f"HTTP_{exc.status}", text[:200]


class SalesforceClient:
    """Calls Salesforce through simple-salesforce on one requests.Session, renewing the session on 401,
    retrying transient failures with exponential backoff, and counting every HTTP call it makes.

    Create it where it is used (a DoFn's setup()): it holds a live HTTP session.
    """

    def __init__(
        self,
        credentials: Credentials,
        settings: ConnectionSettings,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = stopping.sleep,
        throttler: "Throttler | None" = None,
    ):
        self.credentials = credentials
        # Client-side adaptive throttling (Beam's AdaptiveThrottler fits): when many recent calls were
        # answered "slow down", new calls are delayed here before they are sent.
        self.throttler = throttler
        self.adaptive_throttled_seconds = 0.0
        # Per thread (writers share one client): see the `deadline` property.
        self._local = threading.local()
        self.settings = settings
        self._clock = clock
        self._sleep = sleep
        self._random = random.Random()
        self._lock = threading.Lock()
        # Separate from the call-counting lock, which the login's own response hook takes.
        self._login_lock = threading.Lock()
        self._api_calls = 0
        self.retries = 0  # calls repeated after a transient failure
        self.backoff_seconds = 0.0  # time spent backing off before retries
        self.throttled_seconds = 0.0  # time spent waiting for the call rate limit (max_calls_per_second)
        self._governor = UsageGovernor(settings.api_usage_limit_percent, clock)
        rate = settings.max_calls_per_second
        self._bucket = TokenBucket(rate, clock) if rate is not None else None
        self.session_renewals = 0
        self.deadlines_exceeded = 0  # retries not started because the batch's deadline had passed
        self._session = settings.make_session()
        self._session.hooks["response"].append(self._count_call)
        self._sf: Salesforce | None = None
        self._describes: dict[str, tuple[float, ObjectMeta]] = {}
        self._describe_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"SalesforceClient(username={self.credentials.username!r}, login_url={self.settings.login_url!r})"
        )

    @property
    def deadline(self) -> float | None:
        """A monotonic time after which this thread starts no retry (the writer sets one per batch), so
        that one batch cannot hold a bundle for ever through retries and backoffs."""
        return getattr(self._local, "deadline", None)

    @deadline.setter
    def deadline(self, value: float | None) -> None:
        self._local.deadline = value

    @property
    def api_calls(self) -> int:
        """HTTP calls this client made, login and failed attempts included."""
        return self._api_calls

    @property
    def api_usage(self) -> ApiUsage | None:
        """The org's API usage as the last response that reported it said (Sforce-Limit-Info)."""
        return self._governor.reading

    def _count_call(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        # Read here rather than from simple-salesforce's sf.api_usage: this hook sees every response
        # (errors too) and outlives the Salesforce object that each login replaces.
        usage = parse_limit_info(response.headers.get("Sforce-Limit-Info"))
        with self._lock:
            self._api_calls += 1
            self._governor.record(usage)

    def _throttle(self) -> None:
        """Delays the call while the adaptive throttler says the org is overloaded."""
        if self.throttler is None:
            return
        waited = 0.0
        while self.throttler.throttle_request(self._clock() * 1000) and waited < MAX_THROTTLE_SECONDS:
            self._sleep(THROTTLE_STEP_SECONDS)
            waited += THROTTLE_STEP_SECONDS
        self.adaptive_throttled_seconds += waited

    def _succeeded(self) -> None:
        if self.throttler is not None:
            self.throttler.successful_request(self._clock() * 1000)

    def _before_call(self, counts_against_allocation: bool = True) -> None:
        """Refuses the call when the API budget is reserved, then waits for the call rate limit."""
        with self._lock:
            if counts_against_allocation:
                self._governor.check()  # before taking a token: a refused call spends none
            wait = self._bucket.reserve() if self._bucket is not None else 0.0
            self.throttled_seconds += wait
        if wait > 0:
            self._sleep(wait)

    # -- session ---------------------------------------------------------------------------------

    def login(self) -> None:
        """SOAP login; raises SalesforceLoginError when refused.

        5xx answers, refused connections and timeouts are retried with backoff; an untrusted certificate
        or a login host that does not resolve raise TransientError at once (attempts=1), since every
        retry would fail the same way.
        """
        attempt = 0
        while True:
            # Logins do not count against the daily allocation, but they are calls the rate covers.
            self._before_call(counts_against_allocation=False)
            try:
                result = soap_session_login(self.credentials, self.settings, self._session)
            except LoginTransientError as exc:
                if not exc.retry or attempt >= self.settings.max_retries:
                    raise TransientError(exc.code, exc.message, attempt + 1) from None
                log.warning("Salesforce login failed transiently (%s), retrying", exc.code)
                self.back_off(attempt)
                attempt += 1
                continue
            self._sf = rest_client(result, self.settings, self._session)
            return

    def _current(self) -> Salesforce:
        if self._sf is None:
            with self._login_lock:
                if self._sf is None:
                    self.login()
        assert self._sf is not None
        return self._sf

    def _renew(self, expired: Salesforce) -> None:
        with self._login_lock:
            # Another thread may have renewed it while this one waited.
            if self._sf is expired:
                self.session_renewals += 1
                log.info("Salesforce session expired; logging in again")
                self.login()

    # -- retries ---------------------------------------------------------------------------------

    def backoff_delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt + 1`: exponential, capped, with jitter so that
        many workers hit by the same outage do not come back in lockstep."""
        delay = min(self.settings.backoff_base_seconds * (2**attempt), MAX_BACKOFF_SECONDS)
        return delay * (0.5 + self._random.random() / 2)

    def back_off(self, attempt: int) -> None:
        """Waits before retry number `attempt + 1`, here or in a caller (a create resent after a lookup)."""
        delay = self.backoff_delay(attempt)
        self.retries += 1
        self.backoff_seconds += delay
        self._sleep(delay)

    def _call(
        self, op: Callable[[Salesforce], T], idempotent: bool = True, counts_against_allocation: bool = True
    ) -> T:
        """Runs `op` with session renewal and retries.

        A non-idempotent call (create) is repeated here only when Salesforce refused it before doing
        anything (expired session, concurrency limit, no connection); other transient failures raise
        TransientError(maybe_applied=True) at once, so that the caller can look the records up first.
        Every attempt passes the governor first: ApiUsageReserved is raised without calling.
        """
        attempt = 0
        renewals = 0
        while True:
            sf = self._current()
            self._before_call(counts_against_allocation)
            self._throttle()
            try:
                answer = op(sf)
                self._succeeded()
                return answer
            except SalesforceExpiredSession:
                if renewals >= MAX_SESSION_RENEWALS:
                    raise SalesforceLoginError(
                        "INVALID_SESSION_ID", "the session was rejected again right after a fresh login"
                    ) from None
                renewals += 1
                self._renew(sf)
                continue
            except SalesforceError as exc:
                failure = self._classify(exc)
            except requests.exceptions.SSLError:
                raise TransientError("SSLError", UNTRUSTED_CERTIFICATE, attempt + 1) from None
            except requests.ConnectTimeout:
                failure = _Failure("ConnectTimeout", "could not connect to Salesforce", maybe_applied=False)
            except requests.RequestException as exc:
                # The exception's text carries the URL (and so a query's values): keep the class only.
                failure = _Failure(type(exc).__name__, "request to Salesforce failed", maybe_applied=True)
            if failure.maybe_applied and not idempotent:
                raise TransientError(failure.code, failure.message, attempt + 1, maybe_applied=True)
            if attempt >= self.settings.max_retries:
                raise TransientError(failure.code, failure.message, attempt + 1, failure.maybe_applied)
            if self.deadline is not None and self._clock() + self.backoff_delay(attempt) > self.deadline:
                self.deadlines_exceeded += 1
                raise TransientError(
                    failure.code,
                    f"{failure.message} (the batch's deadline passed)",
                    attempt + 1,
                    failure.maybe_applied,
                )
            log.warning("Salesforce call failed transiently (%s), retry %d", failure.code, attempt + 1)
            self.back_off(attempt)
            attempt += 1

    @staticmethod
    def _classify(exc: SalesforceError) -> _Failure:
        """The retryable failure behind `exc`, or raises the error the caller should see."""
        status, code, message = _error_details(exc)
        if status == 403 and code == "REQUEST_LIMIT_EXCEEDED":
            if "TotalRequests" in message:
                raise ApiLimitExceeded(message) from None
            # The concurrent-request cap refuses a call before running it.
            return _Failure(code, message, maybe_applied=False)
        if status >= 500 or is_retryable(code):
            return _Failure(code, message, maybe_applied=True)
        raise SalesforceApiError(status, code, message) from None

    # -- API ---------------------------------------------------------------------------------------

    def prime_describe(self, meta: ObjectMeta) -> None:
        """Takes `meta` as the object's describe read now (one read at the job's start, carried to the
        workers), so that the first describe of it spends no call; it is read again after the TTL."""
        self._describes[meta.name.lower()] = (self._clock(), meta)

    def describe(self, sobject: str) -> ObjectMeta:
        """The object's field metadata, read again once it is older than describe_ttl_seconds."""
        if not _SOBJECT_NAME.match(sobject):
            raise ValueError(f"not an sObject name: {sobject!r}")
        key = sobject.lower()
        cached = self._describes.get(key)
        now = self._clock()
        if cached and now - cached[0] < self.settings.describe_ttl_seconds:
            return cached[1]
        # Writer threads share the client: one of them reads the describe, the others wait for it
        # instead of spending a call each.
        with self._describe_lock:
            cached = self._describes.get(key)
            if cached and self._clock() - cached[0] < self.settings.describe_ttl_seconds:
                return cached[1]
            return self._read_describe(sobject, key, cached)

    def _read_describe(self, sobject: str, key: str, cached: tuple[float, ObjectMeta] | None) -> ObjectMeta:
        now = self._clock()
        timeout = self.settings.timeout_seconds
        try:
            body = self._call(lambda sf: sf.restful(f"sobjects/{sobject}/describe", timeout=timeout))
        except TransientError:
            if cached is None:
                raise
            # Field metadata changes rarely; stale metadata beats stopping the pipeline.
            log.warning("describe of %s failed transiently; keeping the metadata read earlier", sobject)
            return cached[1]
        meta = ObjectMeta.from_describe(body)
        self._describes[key] = (now, meta)
        return meta

    def refresh_api_usage(self) -> ApiUsage | None:
        """Reads the org's daily API usage from `/limits` (DailyApiRequests) and lets the governor use it.

        Made even when the governor holds calls back: it is how a waiting writer learns that the rolling
        24 hours have freed calls, or that an administrator raised the allocation.
        """
        timeout = self.settings.timeout_seconds
        body = self._call(lambda sf: sf.limits(timeout=timeout), counts_against_allocation=False)
        daily = body.get("DailyApiRequests") if isinstance(body, dict) else None
        if not isinstance(daily, dict) or not isinstance(daily.get("Max"), int):
            return None
        usage = ApiUsage(used=daily["Max"] - int(daily.get("Remaining") or 0), max=daily["Max"])
        with self._lock:
            self._governor.record(usage)
        return usage

    def query_all(self, soql: str) -> list[dict]:
        """Every record the query matches, following nextRecordsUrl; each page is retried on its own.

        Records are plain dicts of the selected fields, without the "attributes" entry.
        """
        timeout = self.settings.timeout_seconds
        page = self._call(lambda sf: sf.query(soql, timeout=timeout))
        records = [_strip(r) for r in page.get("records", ())]
        while not page.get("done", True):
            next_url = page["nextRecordsUrl"]
            page = self._call(
                lambda sf, url=next_url: sf.query_more(url, identifier_is_url=True, timeout=timeout)
            )
            records.extend(_strip(r) for r in page.get("records", ()))
        return records

    def create_many(self, sobject: str, records: list[dict]) -> list[SaveResult]:
        """Creates records through sObject Collections, 200 a call; one SaveResult per record, in order.

        Raises TransientError(maybe_applied=True) without resending when a call failed in a way that
        may have created records (look them up before trying again); earlier chunks stay written.
        """
        for record in records:
            if any(k.lower() == "id" for k in record):
                raise ValueError("records to create must not have an Id")
        return self._collections("POST", sobject, records, idempotent=False)

    def update_many(self, sobject: str, records: list[dict]) -> list[SaveResult]:
        """Updates records (each with "Id") through sObject Collections, 200 a call; retried safely."""
        for record in records:
            if not any(k.lower() == "id" and v for k, v in record.items()):
                raise ValueError("every record to update needs its Id")
        return self._collections("PATCH", sobject, records, idempotent=True)

    def upsert_many(self, sobject: str, external_id_field: str, records: list[dict]) -> list[SaveResult]:
        """Upserts records matched on `external_id_field` through sObject Collections, 200 a call; each
        SaveResult says whether it `created` the record. Retried safely: an upsert on an External ID
        cannot create a record twice."""
        if not _SOBJECT_NAME.match(external_id_field):
            raise ValueError(f"not a field name: {external_id_field!r}")
        wanted = external_id_field.lower()
        for record in records:
            if not any(k.lower() == wanted and v not in (None, "") for k, v in record.items()):
                raise ValueError(f"every record to upsert needs its {external_id_field}")
        path = f"composite/sobjects/{sobject}/{external_id_field}"
        return self._collections("PATCH", sobject, records, idempotent=True, path=path)

    def delete_many(self, sobject: str, ids: list[str]) -> list[SaveResult]:
        """Deletes records of `sobject` by id through sObject Collections, 200 a call; one SaveResult per
        id, in order. Retried safely: an id deleted already fails alone (ENTITY_IS_DELETED)."""
        if not _SOBJECT_NAME.match(sobject):
            raise ValueError(f"not an sObject name: {sobject!r}")
        for record_id in ids:
            if not isinstance(record_id, str) or not _RECORD_ID.match(record_id):
                raise ValueError(f"not a record id: {record_id!r}")
        timeout = self.settings.timeout_seconds
        results: list[SaveResult] = []
        for start in range(0, len(ids), COLLECTION_SIZE):
            chunk = ids[start : start + COLLECTION_SIZE]
            params = {"ids": ",".join(chunk), "allOrNone": "false"}
            answer = self._call(
                lambda sf, params=params: sf.restful(
                    "composite/sobjects", params=params, method="DELETE", timeout=timeout
                ),
                idempotent=True,
            )
            results.extend(_save_results(answer, len(chunk)))
        return results

    def _collections(
        self,
        method: str,
        sobject: str,
        records: list[dict],
        idempotent: bool,
        path: str = "composite/sobjects",
    ) -> list[SaveResult]:
        if not _SOBJECT_NAME.match(sobject):
            raise ValueError(f"not an sObject name: {sobject!r}")
        timeout = self.settings.timeout_seconds
        results: list[SaveResult] = []
        for start in range(0, len(records), COLLECTION_SIZE):
            chunk = [
                {"attributes": {"type": sobject}, **{k: v for k, v in r.items() if k != "attributes"}}
                for r in records[start : start + COLLECTION_SIZE]
            ]
            body = {"allOrNone": False, "records": chunk}
            answer = self._call(
                lambda sf, body=body: sf.restful(path, method=method, json=body, timeout=timeout),
                idempotent=idempotent,
            )
            results.extend(_save_results(answer, len(chunk)))
        return results


def _save_results(answer: Any, expected: int) -> list[SaveResult]:
    if not isinstance(answer, list) or len(answer) != expected:
        raise SalesforceApiError(
            200, "UNEXPECTED_RESPONSE", f"expected {expected} results from composite/sobjects"
        )
    return [SaveResult.from_json(r) for r in answer]


def _strip(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "attributes"}
