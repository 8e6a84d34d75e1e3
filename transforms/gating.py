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
    return _enables(_setting(event))


def salesforce_disabled(event: SegmentEvent) -> bool:
    """True when the event opts out of Salesforce explicitly, as Segment's integrations object says.

    `"Salesforce": false`, or `"All": false` without Salesforce enabled. `--always_enabled` drops
    the seed's opt-in requirement, but a sender's explicit "not to Salesforce" still holds.
    """
    setting = _setting(event)
    if setting is False:
        return True
    return event.integrations.get("All") is False and not _enables(setting)


def _setting(event: SegmentEvent) -> Any:
    if INTEGRATION_KEY in event.integrations:
        return event.integrations[INTEGRATION_KEY]
    legacy = event.context.get("integrations")
    return legacy.get(INTEGRATION_KEY) if isinstance(legacy, dict) else None


def _enables(setting: Any) -> bool:
    # Only JSON true or an object: "true", 1 or a non-empty string are not what the seed asks for.
    return setting is True or isinstance(setting, dict)
