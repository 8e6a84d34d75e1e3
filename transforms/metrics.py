"""The pipeline's metric namespace and every metric name: a fixed set, none built from event data.

A job that runs for months must not grow a new counter per trait name or per error message, so names
are built only from closed sets: event types, the configured sObjects, the writer's actions and the
reasons below. Per-field details (which fields were trimmed, which custom fields the org lacks) go to
string-set metrics whose values the writers cap at FIELD_NAMES_PER_KIND per writer.
"""

import re

NAMESPACE = "beamforce"

# Plain totals.
EVENTS_READ = "events_read"
BLANK_LINES = "blank_lines"
DEDUPLICATED = "deduplicated"
DEAD_LETTER_RETRYABLE = "dead_letter_retryable"
API_CALLS = "api_calls"
THROTTLED_SECONDS = "throttled_seconds"
# Ops beyond the first that one event gave (it triggered several actions): each is accounted for on its
# own, so the summary balances events read plus these against the outcomes.
ACTION_EXTRA_DELIVERIES = "action_extra_deliveries"
# Write calls a dry run planned instead of making (--dry_run): counted in api_calls too.
PLANNED_WRITE_CALLS = "planned_write_calls"
STALE_FIELDS_SKIPPED = "stale_fields_skipped"  # field values older than what the record already holds
# Events dated after they were received (a client clock ahead): ordered as of when they were received.
FUTURE_TIMESTAMPS = "future_timestamps"

# Distributions.
BATCH_SIZE = "batch_size"
WRITE_BATCH_SIZE = "write_batch_size"
WRITE_BATCH_LATENCY_MS = "write_batch_latency_ms"

# Kinds of per-field notes the writer makes while fitting records to the org's fields.
FIELD_NOTE_KINDS = ("trimmed", "converted", "dropped_type", "dropped_unknown", "dropped_readonly")
# At most this many distinct "Object.Field" names per kind and writer go into the string sets; the
# per-kind counters still count every record.
FIELD_NAMES_PER_KIND = 100

# Salesforce error codes are UPPER_SNAKE; anything else a server says is folded into one reason, so
# that a misbehaving proxy cannot mint counter names.
_ERROR_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")
OTHER_REASON = "OTHER_ERROR"


def filtered(reason: str) -> str:
    """Events filtered for `reason` (a fixed pipeline reason, e.g. integration_disabled)."""
    return f"filtered:{reason}"


def dead_letter(reason: str) -> str:
    """Dead letters by reason: a pipeline reason or a Salesforce error code."""
    return f"dead_letter:{reason if _ERROR_CODE.match(reason or '') else OTHER_REASON}"


def events_written(sobject: str, action: str) -> str:
    """Events that went into records of `sobject` created or updated (`action`: create | update)."""
    return f"events_written:{sobject}:{action}"


def records_written(sobject: str, action: str) -> str:
    return f"records_written:{sobject}:{action}"


def action_records(action_name: str, kind: str) -> str:
    """Records a custom action (actions/: its name, from the actions file, a fixed set) wrote, by kind."""
    return f"action_records:{action_name}:{kind}"


def ambiguous_match(sobject: str) -> str:
    """Records for which several Salesforce records matched (the newest was updated)."""
    return f"ambiguous_match:{sobject}"


def field_note(kind: str) -> str:
    """Counter of records with at least one field of this note kind (e.g. trimmed)."""
    if kind not in FIELD_NOTE_KINDS:
        raise ValueError(f"unknown field note kind {kind!r}: one of {', '.join(FIELD_NOTE_KINDS)}")
    return f"fields_{kind}"


def field_names(kind: str) -> str:
    """String set of "Object.Field" names with this note kind (capped per writer)."""
    if kind not in FIELD_NOTE_KINDS:
        raise ValueError(f"unknown field note kind {kind!r}: one of {', '.join(FIELD_NOTE_KINDS)}")
    return f"field_names:{kind}"


def field_names_capped(kind: str) -> str:
    """Counter of writers that met more than FIELD_NAMES_PER_KIND names of this note kind: the names
    listed in field_names(kind) are then only some of them."""
    return field_names(kind).replace("field_names:", "field_names_capped:", 1)


# String set of "Object.Field" names of docs/org-setup.md's fields that the org lacks.
ORG_SETUP_MISSING = "org_setup_missing"

# Gauges the writers set, for progress lines: the org's remaining daily API calls as the last response
# reported them, and how far the newest event written lags behind the wall clock.
API_CALLS_REMAINING = "api_calls_remaining"
EVENT_TIME_LAG_SECONDS = "event_time_lag_seconds"
# Writer internals, exported so that a long-running job's health shows in the runner's metrics.
CLIENT_RETRIES = "client_retries"
CLIENT_BACKOFF_SECONDS = "client_backoff_seconds"
SESSION_RENEWALS = "session_renewals"
API_LIMIT_WAIT_SECONDS = "api_limit_wait_seconds"  # time writers paused for the org's API allocation
BATCH_DEADLINE_EXCEEDED = "batch_deadline_exceeded"

# Why a streaming buffer (BufferByShard) was flushed: full (batch_size records), aged
# (max_buffering_seconds) or drained (end of input); tells whether batches fill before they time out.
BUFFER_FLUSH_REASONS = ("size", "age", "drain")


def buffer_flushed(reason: str) -> str:
    """Counter of buffers flushed for `reason` (one of BUFFER_FLUSH_REASONS)."""
    if reason not in BUFFER_FLUSH_REASONS:
        raise ValueError(f"unknown buffer flush reason {reason!r}: one of {', '.join(BUFFER_FLUSH_REASONS)}")
    return f"buffer_flushed:{reason}"
