"""The seed's gate: an event goes to Salesforce only when its integrations enable Salesforce."""

from typing import Any

from schemas.events import SegmentEvent

# Segment's integration keys are case-sensitive destination names.
INTEGRATION_KEY = "Salesforce"


def salesforce_enabled(event: SegmentEvent) -> bool:
    """True when `integrations.Salesforce` is JSON `true` or an options object.

    `integrations.All` does not enable Salesforce: the seed requires every event to name
    Salesforce, to keep the org's API allocation from being spent by accident. Older libraries
    put `integrations` under `context` (the seed mentions `context.integrations`); it is read only
    when the top-level `integrations` does not mention Salesforce at all.
    """
    if INTEGRATION_KEY in event.integrations:
        return _enables(event.integrations[INTEGRATION_KEY])
    legacy = event.context.get("integrations")
    return isinstance(legacy, dict) and _enables(legacy.get(INTEGRATION_KEY))


def _enables(setting: Any) -> bool:
    # Only JSON true or an object: "true", 1 or a non-empty string are not what the seed asks for.
    return setting is True or isinstance(setting, dict)
