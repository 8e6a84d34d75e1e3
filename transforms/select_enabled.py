"""SelectEnabled: only events whose integrations enable Salesforce go on (the seed's gate)."""

import apache_beam as beam

from schemas.events import SegmentEvent
from transforms import gating, metrics
from transforms.tally import TALLY, Counts, collect

DISABLED = metrics.filtered("integration_disabled")


class _KeepEnabled(beam.DoFn):
    def __init__(self, always_enabled: bool) -> None:
        self._always_enabled = always_enabled
        self.counts = Counts()

    def process(self, event: SegmentEvent):
        if self._always_enabled:
            passes = not gating.salesforce_disabled(event)
        else:
            passes = gating.salesforce_enabled(event)
        if passes:
            yield event
        else:
            self.counts.inc(DISABLED)

    def finish_bundle(self):
        yield from self.counts.emit()


class SelectEnabled(beam.PTransform):
    """Passes events with `integrations.Salesforce` enabled; with `always_enabled`, every event that
    does not opt out explicitly (`"Salesforce": false`, or `"All": false` without Salesforce)."""

    def __init__(self, always_enabled: bool = False) -> None:
        super().__init__()
        self._always_enabled = bool(always_enabled)

    def expand(self, events: beam.PCollection) -> beam.PCollection:
        kept = events | "KeepEnabled" >> beam.ParDo(_KeepEnabled(self._always_enabled)).with_output_types(
            SegmentEvent
        ).with_outputs(TALLY, main="events")
        collect(kept[TALLY])
        return kept.events
