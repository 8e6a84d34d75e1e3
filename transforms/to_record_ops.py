"""ToRecordOps: each event into the RecordOps its actions ask for (actions/: identify -> Lead and group ->
Account by default), the events no action takes counted as filtered."""

import dataclasses

import apache_beam as beam

from actions.config import ActionsConfig, default_actions
from schemas.dead_letter import DeadLetter
from schemas.events import SegmentEvent
from schemas.records import RecordOp
from transforms import account_mapping, metrics
from transforms.action_mapping import action_op
from transforms.result import Result
from transforms.tally import TALLY, Counts, collect

DEAD_LETTER = "dead_letter"


class _MapEvent(beam.DoFn):
    def __init__(self, config: ActionsConfig, address_mapping: str) -> None:
        self._config = config
        self._address_mapping = address_mapping
        self.counts = Counts()

    def finish_bundle(self):
        yield from self.counts.emit()

    def process(self, event: SegmentEvent):
        actions = self._config.for_replay(
            event.type, event.event if event.type == "track" else None, event.replay_action
        )
        if not actions:
            self.counts.inc(metrics.filtered(f"no_action_for_{event.type}"))
            return
        if len(actions) > 1:
            # Each action's op is accounted for on its own (written or dead-lettered): the summary
            # balances by counting the event's extra deliveries.
            self.counts.inc(metrics.ACTION_EXTRA_DELIVERIES, len(actions) - 1)
        for action in actions:
            op = action_op(event, action, self._address_mapping)
            if isinstance(op, DeadLetter):
                if len(actions) > 1:  # a replay redoes only this action (DeadLetter.action)
                    op = dataclasses.replace(op, action=action.name)
                yield beam.pvalue.TaggedOutput(DEAD_LETTER, op)
            else:
                yield op


class ToRecordOps(beam.PTransform):
    """Maps each event to the RecordOps its actions ask for; unmappable events become dead letters.

    `config` is the --actions_config (checked before the run); by default the built-in actions
    (actions/defaults.yaml: identify -> Lead, group -> Account).
    """

    def __init__(self, address_mapping: str = "billing", config: ActionsConfig | None = None) -> None:
        super().__init__()
        if address_mapping not in account_mapping.ADDRESS_MAPPINGS:
            raise ValueError(
                f"address_mapping must be one of {', '.join(account_mapping.ADDRESS_MAPPINGS)}, "
                f"not {address_mapping!r}"
            )
        self._address_mapping = address_mapping
        self._config = config if config is not None else default_actions()

    def expand(self, events: beam.PCollection):
        # Returns a Result; annotating it would make Beam read it as an output type hint.
        mapped = events | "MapEvent" >> beam.ParDo(
            _MapEvent(self._config, self._address_mapping)
        ).with_output_types(RecordOp).with_outputs(DEAD_LETTER, TALLY, main="ops")
        collect(mapped[TALLY])
        return Result(mapped.ops, mapped[DEAD_LETTER])
