"""The run's summary: every event read accounted for as written, filtered, deduplicated or dead-lettered."""

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

# Counters that add to one number of the summary: counter name -> Summary attribute.
TOTALS = {
    "events_read": "events_read",
    "blank_lines": "blank_lines",
    "deduplicated": "deduplicated",
    "dead_letter_retryable": "retryable_dead_letters",
    "api_calls": "api_calls",
    "throttled_seconds": "throttled_seconds",
}
# Counters keyed by reason or object, as "<kind>:<rest>": kind -> Summary attribute.
BY_KEY = {"filtered": "filtered", "dead_letter": "dead_lettered", "ambiguous_match": "ambiguous_matches"}
# Counter kinds the writer reports per field, as "<kind>:<Object>.<Field>".
FIELD_NOTES = ("trimmed", "converted", "dropped_type", "dropped_unknown", "dropped_readonly")


@dataclass
class Summary:
    """Built from the pipeline's counters (namespace "beamforce")."""

    events_read: int = 0
    blank_lines: int = 0
    written: dict[str, dict[str, int]] = field(default_factory=dict)  # object -> create|update -> events
    records_written: dict[str, dict[str, int]] = field(default_factory=dict)  # object -> create|update -> n
    filtered: dict[str, int] = field(default_factory=dict)  # reason -> events
    deduplicated: int = 0
    dead_lettered: dict[str, int] = field(default_factory=dict)  # reason -> events
    retryable_dead_letters: int = 0  # of those, the ones a later replay could deliver
    ambiguous_matches: dict[str, int] = field(default_factory=dict)  # object -> records
    trimmed: dict[str, int] = field(default_factory=dict)  # "Object.Field" -> records
    converted: dict[str, int] = field(default_factory=dict)
    dropped_type: dict[str, int] = field(default_factory=dict)
    dropped_unknown: dict[str, int] = field(default_factory=dict)
    dropped_readonly: dict[str, int] = field(default_factory=dict)
    api_calls: int = 0
    throttled_seconds: int = 0  # whole seconds the writers waited for --max_calls_per_second

    @classmethod
    def from_counters(cls, counters: Mapping[str, int], extra_api_calls: int = 0) -> "Summary":
        s = cls(api_calls=extra_api_calls)
        for name, value in sorted(counters.items()):
            kind, _, rest = name.partition(":")
            if name in TOTALS:
                setattr(s, TOTALS[name], getattr(s, TOTALS[name]) + value)
            elif kind in BY_KEY:
                _add(getattr(s, BY_KEY[kind]), rest, value)
            elif kind in ("events_written", "records_written"):
                sobject, _, action = rest.rpartition(":")
                target = s.written if kind == "events_written" else s.records_written
                _add(target.setdefault(sobject, {}), action, value)
            elif kind in FIELD_NOTES:
                _add(getattr(s, kind), rest, value)
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
        """Nothing lost: every event read ended as exactly one of the four outcomes."""
        return self.events_read == (
            self.events_written + self.events_filtered + self.deduplicated + self.events_dead_lettered
        )

    @property
    def missing_fields(self) -> list[str]:
        """Fields the mapping wanted that the org does not have: create them to receive the data."""
        return sorted(self.dropped_unknown)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(
            events_written=self.events_written,
            events_filtered=self.events_filtered,
            events_dead_lettered=self.events_dead_lettered,
            balanced=self.balanced,
            missing_fields=self.missing_fields,
        )
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def format_text(self) -> str:
        lines = [
            f"Events read:         {self.events_read}"
            + (f" (and {self.blank_lines} blank lines)" if self.blank_lines else "")
        ]
        lines.append(f"  written:           {self.events_written}")
        for sobject, by_action in sorted(self.written.items()):
            records = self.records_written.get(sobject, {})
            for action, events in sorted(by_action.items()):
                lines.append(f"    {sobject} {action}: {events} events into {records.get(action, 0)} records")
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
        lines.append(
            "  balanced:          " + ("yes" if self.balanced else "NO: some events are unaccounted for")
        )
        if self.ambiguous_matches:
            lines.append("Several records matched (the most recently modified one was updated):")
            lines += [f"    {sobject}: {n}" for sobject, n in sorted(self.ambiguous_matches.items())]
        for title, counts in (
            ("Fields missing in the org (create them to receive these values):", self.dropped_unknown),
            ("Values trimmed to the field's length:", self.trimmed),
            ("Values converted to the field's type:", self.converted),
            ("Values dropped, wrong type for the field:", self.dropped_type),
            ("Values dropped, field not writable:", self.dropped_readonly),
        ):
            if counts:
                lines.append(title)
                lines += [f"    {name}: {n} records" for name, n in sorted(counts.items())]
        lines.append(f"Salesforce API calls: {self.api_calls}")
        if self.throttled_seconds:
            lines.append(f"Waited for --max_calls_per_second: {self.throttled_seconds} s (writers together)")
        return "\n".join(lines)


def _add(target: dict[str, int], key: str, value: int) -> None:
    target[key] = target.get(key, 0) + value
