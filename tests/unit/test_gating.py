"""Table tests for the seed's gate: only events that name Salesforce go on."""

import pytest

from schemas.events import SegmentEvent
from transforms.gating import salesforce_disabled, salesforce_enabled


def event(integrations, context=None):
    return SegmentEvent(
        type="identify", message_id="m", timestamp="", integrations=integrations, context=context or {}
    )


@pytest.mark.parametrize(
    "integrations, context, enabled",
    [
        ({"Salesforce": True}, None, True),
        ({"Salesforce": {}}, None, True),
        ({"Salesforce": {"sandbox": True}}, None, True),
        ({"Salesforce": False}, None, False),
        ({}, None, False),
        ({"All": True}, None, False),
        ({"All": True, "Salesforce": False}, None, False),
        ({"All": False, "Salesforce": True}, None, True),
        # Only JSON true or an options object: the seed asks for exactly `'Salesforce': true`.
        ({"Salesforce": "true"}, None, False),
        ({"Salesforce": 1}, None, False),
        ({"Salesforce": None}, None, False),
        ({"Salesforce": ["x"]}, None, False),
        # Integration keys are case-sensitive destination names.
        ({"salesforce": True}, None, False),
        ({"SALESFORCE": True}, None, False),
        # context.integrations (older libraries), read only when integrations does not say.
        ({}, {"integrations": {"Salesforce": True}}, True),
        ({}, {"integrations": {"Salesforce": {"a": 1}}}, True),
        ({}, {"integrations": {"Salesforce": False}}, False),
        ({}, {"integrations": "Salesforce"}, False),
        ({"Salesforce": False}, {"integrations": {"Salesforce": True}}, False),
        ({"Salesforce": True}, {"integrations": {"Salesforce": False}}, True),
    ],
)
def test_salesforce_enabled(integrations, context, enabled):
    assert salesforce_enabled(event(integrations, context)) is enabled


@pytest.mark.parametrize(
    "integrations, context, disabled",
    [
        # --always_enabled sends everything except what opts out explicitly (Segment's semantics).
        ({}, None, False),
        ({"All": True}, None, False),
        ({"Salesforce": True}, None, False),
        ({"Salesforce": {}}, None, False),
        ({"Salesforce": False}, None, True),
        ({"All": True, "Salesforce": False}, None, True),
        ({"All": False}, None, True),
        ({"All": False, "Salesforce": True}, None, False),
        ({"All": False, "Salesforce": {"x": 1}}, None, False),
        ({"Salesforce": "false"}, None, False),
        ({"salesforce": False}, None, False),
        ({}, {"integrations": {"Salesforce": False}}, True),
        ({"Salesforce": True}, {"integrations": {"Salesforce": False}}, False),
    ],
)
def test_salesforce_disabled(integrations, context, disabled):
    assert salesforce_disabled(event(integrations, context)) is disabled
