"""The run's summary: every event read accounted for as written, filtered, deduplicated or dead-lettered."""

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

from transforms import metrics

# Counters that add to one number of the summary: counter name -> Summary attribute.
TOTALS = {
    metrics.EVENTS_READ: "events_read",
    metrics.BLANK_LINES: "blank_lines",
    metrics.DEDUPLICATED: "deduplicated",
    metrics.DEAD_LETTER_RETRYABLE: "retryable_dead_letters",
    metrics.API_CALLS: "api_calls",
    metrics.THROTTLED_SECONDS: "throttled_seconds",
    metrics.STALE_FIELDS_SKIPPED: "stale_fields_skipped",
    metrics.FUTURE_TIMESTAMPS: "future_timestamps",
    metrics.ACTION_EXTRA_DELIVERIES: "action_extra_deliveries",
    metrics.PLANNED_WRITE_CALLS: "planned_write_calls",
}
# Counters keyed by reason or object, as "<kind>:<rest>": kind -> Summary attribute.
BY_KEY = {"filtered": "filtered", "dead_letter": "dead_lettered", "ambiguous_match": "ambiguous_matches"}
# Kinds of per-field notes; each is a Summary attribute holding a FieldNotes.
FIELD_NOTES = metrics.FIELD_NOTE_KINDS
# Reasons the hints of an empty run look at.
INTEGRATION_DISABLED = "integration_disabled"
UNPARSED = ("invalid_json", "not_an_object")
# Field names listed per kind: the text is read by people, the JSON by programs; both stay small
# however many distinct trait names the events carry.
TEXT_FIELD_NAMES = 20
JSON_FIELD_NAMES = 100


@dataclass
class FieldNotes:
    """One kind of per-field note (e.g. trimmed): how many records had it, and on which fields."""

    records: int = 0  # records with at least one such field (the fields_<kind> counter)
    fields: set[str] = field(default_factory=set)  # "Object.Field" names, as many as the writers listed
    capped: bool = False  # a writer met more names than it lists: `fields` is then only some of them

    def __bool__(self) -> bool:
        return bool(self.records or self.fields)

    def listed(self, limit: int) -> tuple[list[str], int]:
        """The first `limit` names in order, and how many more there are."""
        names = sorted(self.fields)
        return names[:limit], max(len(names) - limit, 0)

    def to_dict(self) -> dict:
        names, more = self.listed(JSON_FIELD_NAMES)
        # fields_not_listed counts the names known beyond the list; with fields_list_complete false,
        # the writers met more names than they keep (metrics.FIELD_NAMES_PER_KIND each).
        return {
            "records": self.records,
            "fields": names,
            "fields_not_listed": more,
            "fields_list_complete": not self.capped,
        }


@dataclass
class Summary:
    """Built from the pipeline's counters (namespace "beamforce")."""

    events_read: int = 0
    blank_lines: int = 0
    written: dict[str, dict[str, int]] = field(default_factory=dict)  # object -> create|update -> events
    records_written: dict[str, dict[str, int]] = field(default_factory=dict)  # object -> create|update -> n
    by_action: dict[str, dict[str, int]] = field(default_factory=dict)  # action name -> kind -> records
    filtered: dict[str, int] = field(default_factory=dict)  # reason -> events
    deduplicated: int = 0
    dead_lettered: dict[str, int] = field(default_factory=dict)  # reason -> events
    retryable_dead_letters: int = 0  # of those, the ones a later replay could deliver
    ambiguous_matches: dict[str, int] = field(default_factory=dict)  # object -> records
    trimmed: FieldNotes = field(default_factory=FieldNotes)
    converted: FieldNotes = field(default_factory=FieldNotes)
    dropped_type: FieldNotes = field(default_factory=FieldNotes)
    dropped_unknown: FieldNotes = field(default_factory=FieldNotes)
    dropped_readonly: FieldNotes = field(default_factory=FieldNotes)
    stale_fields_skipped: int = 0  # field values not written: the record already held newer ones
    future_timestamps: int = 0  # events dated after they were received: ordered as of their receipt
    # an event that triggered N actions is accounted for N times: the N - 1 extra deliveries
    action_extra_deliveries: int = 0
    # --dry_run: nothing was written; "written" is what a run would write, and api_calls include the
    # planned_write_calls a run would make
    dry_run: bool = False
    # a stream writes a record again at every flush that holds new events for it: records_written then
    # counts writes, not distinct records
    streaming: bool = False
    # Ctrl-C or SIGTERM stopped the run: the events it had read but not handled yet are in flight, not lost
    # to a bug (what becomes of them depends on the source, as the run's warning says)
    stopped: bool = False
    planned_write_calls: int = 0
    api_calls: int = 0
    throttled_seconds: int = 0  # whole seconds the writers waited for --max_calls_per_second
    dead_letter_output: str | None = None  # the --dead_letter_output prefix the run wrote to
    # "Object.Field" of docs/org-setup.md's fields the org lacks (duplicates and reverts are then possible)
    org_setup_missing: list[str] = field(default_factory=list)

    @classmethod
    def from_counters(
        cls, counters: Mapping[str, int], extra_api_calls: int = 0, dead_letter_output: str | None = None
    ) -> "Summary":
        """From counters alone: per-field notes then have record counts but no field names."""
        return cls.from_metrics(counters, {}, extra_api_calls, dead_letter_output)

    @classmethod
    def from_metrics(
        cls,
        counters: Mapping[str, int],
        string_sets: Mapping[str, Iterable[str]],
        extra_api_calls: int = 0,
        dead_letter_output: str | None = None,
        dry_run: bool = False,
        streaming: bool = False,
        stopped: bool = False,
    ) -> "Summary":
        """From the run's counters and string sets (namespace "beamforce", summed over steps), the calls
        the launching process made itself, where dead letters went, whether it was a dry run, whether it
        was a stream and whether a signal stopped it."""
        s = cls(
            api_calls=extra_api_calls,
            dead_letter_output=dead_letter_output,
            dry_run=dry_run,
            streaming=streaming,
            stopped=stopped,
            org_setup_missing=sorted(string_sets.get(metrics.ORG_SETUP_MISSING, ())),
        )
        for kind in FIELD_NOTES:
            notes = getattr(s, kind)
            notes.records = counters.get(metrics.field_note(kind), 0)
            notes.fields = set(string_sets.get(metrics.field_names(kind), ()))
            notes.capped = counters.get(metrics.field_names_capped(kind), 0) > 0
        for name, value in sorted(counters.items()):
            kind, _, rest = name.partition(":")
            if name in TOTALS:
                setattr(s, TOTALS[name], getattr(s, TOTALS[name]) + value)
            elif kind in BY_KEY:
                _add(getattr(s, BY_KEY[kind]), rest, value)
            elif kind in ("events_written", "records_written", "action_records"):
                where, _, action = rest.rpartition(":")
                target = {
                    "events_written": s.written,
                    "records_written": s.records_written,
                    "action_records": s.by_action,
                }[kind]
                _add(target.setdefault(where, {}), action, value)
        return s

    @property
    def events_written(self) -> int:
        return sum(n for by_action in self.written.values() for n in by_action.values())

    @property
    def events_filtered(self) -> int:
        return sum(self.filtered.values())

    @property
    def events_dead_lettered(self) -> int:
        return sum(self.dead_lettered.values())

    @property
    def balanced(self) -> bool:
        """Nothing lost: every event read (once per action it triggered) ended as exactly one of the four
        outcomes."""
        return self.events_read + self.action_extra_deliveries == (
            self.events_written + self.events_filtered + self.deduplicated + self.events_dead_lettered
        )

    @property
    def events_in_flight(self) -> int:
        """Events read (once per action) that had not ended as an outcome yet: those a stopped run had in
        hand, or, in a run that was not stopped, events lost to a bug."""
        handled = self.events_written + self.events_filtered + self.deduplicated + self.events_dead_lettered
        return max(0, self.events_read + self.action_extra_deliveries - handled)

    @property
    def missing_fields(self) -> list[str]:
        """Fields the mapping wanted that the org does not have: create them to receive the data."""
        return sorted(self.dropped_unknown.fields)

    @property
    def dead_letter_files(self) -> str | None:
        """A glob of the dead-letter files (valid --input for a replay), or the topic they were published
        to (pubsub://projects/P/topics/T, kafka://T)."""
        if not self.dead_letter_output:
            return None
        if self.dead_letter_output.startswith(("pubsub://", "kafka://")):
            return self.dead_letter_output
        return f"{self.dead_letter_output}-*.jsonl"

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update({kind: getattr(self, kind).to_dict() for kind in FIELD_NOTES})
        d.update(
            events_written=self.events_written,
            events_filtered=self.events_filtered,
            events_dead_lettered=self.events_dead_lettered,
            balanced=self.balanced,
            events_in_flight=self.events_in_flight,
            missing_fields=self.dropped_unknown.listed(JSON_FIELD_NAMES)[0],
        )
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def format_text(self) -> str:
        lines = (["Dry run: nothing was written. What a run would do:"] if self.dry_run else []) + [
            f"Events read:         {self.events_read}"
            + (f" (and {self.blank_lines} blank lines)" if self.blank_lines else "")
        ]
        if self.action_extra_deliveries:
            lines.append(
                f"  (+{self.action_extra_deliveries} deliveries: events that triggered several actions count "
                "once per action below)"
            )
        lines.append(f"  written:           {self.events_written}")
        # A stream writes a record again when a later flush holds new events for it: it counts writes.
        into = "in {} record writes" if self.streaming else "into {} records"
        for sobject, by_action in sorted(self.written.items()):
            records = self.records_written.get(sobject, {})
            for action, events in sorted(by_action.items()):
                lines.append(f"    {sobject} {action}: {events} events {into.format(records.get(action, 0))}")
        if len(self.by_action) > 1 or any(len(kinds) > 1 for kinds in self.by_action.values()):
            lines.append(
                "    by action (records): "
                + "; ".join(
                    f"{name}: " + ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
                    for name, kinds in sorted(self.by_action.items())
                )
            )
        lines.append(f"  filtered:          {self.events_filtered}")
        lines += [f"    {reason}: {n}" for reason, n in sorted(self.filtered.items())]
        lines.append(f"  deduplicated:      {self.deduplicated}")
        lines.append(f"  dead-lettered:     {self.events_dead_lettered}")
        lines += [f"    {reason}: {n}" for reason, n in sorted(self.dead_lettered.items())]
        if self.retryable_dead_letters:
            lines.append(
                f"    ({self.retryable_dead_letters} of them retryable: replay them once the org can take "
                "them, with the dead-letter files as --input)"
            )
        if self.events_dead_lettered and self.dead_letter_files:
            lines.append(f"Dead letters: {self.events_dead_lettered}, written to {self.dead_letter_files}")
        if self.balanced:
            balance = "yes"
        elif self.stopped and self.events_in_flight:
            balance = f"no: stopped with {self.events_in_flight} events read and not handled yet"
        else:
            balance = "NO: some events are unaccounted for"
        lines.append("  balanced:          " + balance)
        if self.ambiguous_matches:
            lines.append("Several records matched (the most recently modified one was updated):")
            lines += [f"    {sobject}: {n}" for sobject, n in sorted(self.ambiguous_matches.items())]
        for title, notes in (
            ("Fields missing in the org (create them to receive these values):", self.dropped_unknown),
            ("Values trimmed to the field's length:", self.trimmed),
            ("Values converted to the field's type:", self.converted),
            ("Values dropped, wrong type for the field:", self.dropped_type),
            ("Values dropped, field not writable:", self.dropped_readonly),
        ):
            if notes:
                names, more = notes.listed(TEXT_FIELD_NAMES)
                lines.append(f"{title} {notes.records} records")
                lines += [f"    {name}" for name in names]
                if notes.capped:
                    lines.append(f"    ... and at least {more} more (only the first names met are kept)")
                elif more:
                    lines.append(f"    ... and {more} more")
        if self.stale_fields_skipped:
            lines.append(
                f"Older field values skipped (the record held newer ones): {self.stale_fields_skipped}"
            )
        if self.future_timestamps:
            lines.append(
                "Events dated after they were received (a client clock ahead), ordered as of their "
                f"receipt: {self.future_timestamps}"
            )
        if self.org_setup_missing:
            lines.append(
                "Org set-up missing (docs/org-setup.md; without it concurrent jobs may create duplicates "
                "and replays may revert newer values): " + ", ".join(self.org_setup_missing)
            )
        if self.dry_run:
            lines.append(
                f"Salesforce API calls a run would make: {self.api_calls} ({self.planned_write_calls} of "
                f"them planned writes; {self.api_calls - self.planned_write_calls} made by this dry run: "
                "logins, describes and lookups)"
            )
        else:
            lines.append(f"Salesforce API calls: {self.api_calls}")
        if self.throttled_seconds:
            lines.append(f"Waited for --max_calls_per_second: {self.throttled_seconds} s (writers together)")
        lines += [f"Hint: {hint}" for hint in self.hints()]
        return "\n".join(lines)

    def hints(self) -> list[str]:
        """What to fix when a run read events and wrote none, where the counts point at a cause."""
        if self.events_written or not self.events_read:
            return []
        hints = []
        if self.filtered.get(INTEGRATION_DISABLED):
            hints.append(
                f"{self.filtered[INTEGRATION_DISABLED]} events were not enabled for Salesforce: Segment's "
                "destination takes only events whose integrations say Salesforce: true; add that to the "
                "events, or run with --always_enabled to write every event that does not opt out"
            )
        unparsed = sum(self.dead_lettered.get(reason, 0) for reason in UNPARSED)
        if unparsed and unparsed == self.events_dead_lettered:
            hints.append(
                f"{unparsed} lines were no event: the input must be JSON Lines, one event object per line "
                "(not a JSON array, nor pretty-printed JSON)"
            )
        return hints


def _add(target: dict[str, int], key: str, value: int) -> None:
    target[key] = target.get(key, 0) + value
