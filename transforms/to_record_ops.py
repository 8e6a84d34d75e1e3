"""ToRecordOps: identify into Lead operations, group into Account operations, the rest counted."""

import apache_beam as beam
from apache_beam.metrics import Metrics

from schemas.dead_letter import DeadLetter
from schemas.events import SegmentEvent
from schemas.records import RecordOp
from transforms import account_mapping, lead_mapping, metrics
from transforms.result import Result

DEAD_LETTER = "dead_letter"


class _MapEvent(beam.DoFn):
    def __init__(self, address_mapping: str) -> None:
        self._address_mapping = address_mapping

    def process(self, event: SegmentEvent):
        if event.type == "identify":
            op = lead_mapping.identify_to_lead(event)
        elif event.type == "group":
            op = account_mapping.group_to_account(event, self._address_mapping)
        else:
            # Custom actions (a later issue) will give track/page/screen/alias something to do;
            # until then they are counted as filtered so that the totals still add up.
            Metrics.counter(metrics.NAMESPACE, metrics.filtered(f"no_action_for_{event.type}")).inc()
            return
        if isinstance(op, DeadLetter):
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, op)
        else:
            yield op


class ToRecordOps(beam.PTransform):
    """Maps each event to the RecordOp it asks for; unmappable events become dead letters."""

    def __init__(self, address_mapping: str = "billing") -> None:
        super().__init__()
        if address_mapping not in account_mapping.ADDRESS_MAPPINGS:
            raise ValueError(
                f"address_mapping must be one of {', '.join(account_mapping.ADDRESS_MAPPINGS)}, "
                f"not {address_mapping!r}"
            )
        self._address_mapping = address_mapping

    def expand(self, events: beam.PCollection):
        # Returns a Result; annotating it would make Beam read it as an output type hint.
        mapped = events | "MapEvent" >> beam.ParDo(_MapEvent(self._address_mapping)).with_output_types(
            RecordOp
        ).with_outputs(DEAD_LETTER, main="ops")
        return Result(mapped.ops, mapped[DEAD_LETTER])
