"""Tests of event paths: which keys each event type carries, well-formed paths, and their values."""

import pytest

from actions.paths import ROOTS, check_path, resolve, resolve_first, roots_for

COMMON = {
    "type",
    "context",
    "userId",
    "anonymousId",
    "messageId",
    "timestamp",
    "sentAt",
    "receivedAt",
    "originalTimestamp",
    "integrations",
    "channel",
    "version",
}

EVENT = {
    "type": "track",
    "event": "Order Completed",
    "userId": "u1",
    "anonymousId": None,
    "properties": {
        "title": "Broken",
        "empty": "",
        "nothing": None,
        "products": [{"sku": "A-1", "name": "Pen"}, {"sku": "B-2"}],
        "nested": {"deep": {"value": 0}},
        "Favorite Color": "blue",
        "flags": [True, False],
    },
    "context": {"traits": {"email": "a@example.com"}, "ip": "10.0.0.1"},
}


def test_roots_are_the_segment_event_keys():
    assert ROOTS == COMMON | {
        "event",
        "groupId",
        "traits",
        "properties",
        "name",
        "category",
        "previousId",
    }


@pytest.mark.parametrize(
    ("event_type", "roots"),
    [
        ("identify", COMMON | {"traits"}),
        ("group", COMMON | {"traits", "groupId"}),
        ("track", COMMON | {"properties", "event"}),
        ("page", COMMON),
    ],
)
def test_roots_for(event_type, roots):
    assert roots_for(event_type) == frozenset(roots)


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("traits.email", None),
        ("properties.title", None),
        ("context.traits.email", None),
        ("properties.products.0.sku", None),
        ("properties.Favorite Color", None),
        ("messageId", None),
        ("type", None),
        ("", "the path is empty"),
        ("   ", "the path is empty"),
        ("traits..email", "path 'traits..email' has an empty key (two dots in a row, or a dot at an end)"),
        (".traits", "path '.traits' has an empty key (two dots in a row, or a dot at an end)"),
        ("traits.", "path 'traits.' has an empty key (two dots in a row, or a dot at an end)"),
        ("traits. email", "path 'traits. email' has spaces around a dot or at an end"),
        ("traits .email", "path 'traits .email' has spaces around a dot or at an end"),
        (" traits.email", "path ' traits.email' has spaces around a dot or at an end"),
        ("propertys.title", "path 'propertys.title' does not start with an event key"),
        ("Traits.email", "path 'Traits.email' does not start with an event key"),
        ("email", "path 'email' does not start with an event key"),
    ],
)
def test_check_path(path, problem):
    assert check_path(path) == problem


@pytest.mark.parametrize(
    ("path", "result"),
    [
        ("event", (True, "Order Completed")),
        ("properties.title", (True, "Broken")),
        ("properties.empty", (True, "")),
        ("properties.nothing", (True, None)),
        ("anonymousId", (True, None)),
        ("properties.products.0.sku", (True, "A-1")),
        ("properties.products.1.sku", (True, "B-2")),
        ("properties.products.1.name", (False, None)),
        ("properties.products.2.sku", (False, None)),
        ("properties.products.-1.sku", (False, None)),
        ("properties.products.first", (False, None)),
        ("properties.products", (True, [{"sku": "A-1", "name": "Pen"}, {"sku": "B-2"}])),
        ("properties.nested.deep.value", (True, 0)),
        ("properties.flags.1", (True, False)),
        ("properties.Favorite Color", (True, "blue")),
        ("properties.title.length", (False, None)),
        ("context.traits.email", (True, "a@example.com")),
        ("traits.email", (False, None)),
        ("groupId", (False, None)),
    ],
)
def test_resolve(path, result):
    assert resolve(EVENT, path) == result


@pytest.mark.parametrize(
    ("paths", "result"),
    [
        (["properties.title"], (True, "Broken")),
        (["traits.email", "context.traits.email"], (True, "a@example.com")),
        (["properties.nothing", "anonymousId", "userId"], (True, "u1")),
        (["properties.empty", "userId"], (True, "")),
        (["properties.flags.1", "userId"], (True, False)),
        (["properties.nothing", "traits.name"], (False, None)),
        ([], (False, None)),
    ],
)
def test_resolve_first(paths, result):
    assert resolve_first(EVENT, paths) == result
