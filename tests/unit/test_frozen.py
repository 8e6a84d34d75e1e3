"""schemas.frozen.maker and schemas.records.merged_op: the instance the dataclass's own __init__ makes, or a
TypeError."""

import dataclasses

import pytest

from schemas.events import EventRef, EventRefs
from schemas.frozen import maker
from schemas.records import MergedOp, merged_op


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int = 0


def test_it_makes_what_the_init_makes():
    made = maker(Point)(x=1, y=2)
    assert made == Point(1, 2)
    assert type(made) is Point
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.x = 3  # type: ignore[misc]


@pytest.mark.parametrize("values", [{"x": 1}, {"x": 1, "y": 2, "z": 3}, {}])
def test_every_field_and_no_other(values):
    with pytest.raises(TypeError, match="a Point has the fields"):
        maker(Point)(**values)


def test_a_class_with_a_post_init_is_refused():
    with pytest.raises(TypeError, match="__post_init__"):
        maker(MergedOp)


MERGED = {
    "sobject": "Lead",
    "match_field": "Email",
    "match_value": "ada@example.com",
    "fields": {"Email": "ada@example.com"},
    "create_defaults": {"Company": "n/a"},
    "field_times": {"Email": "2026-01-01T00:00:00.000Z"},
    "action": "",
    "instance": "",
}


@pytest.mark.parametrize(
    "refs",
    [
        [EventRef("in/a.jsonl", 7, None)],
        [EventRef(None, 0, '{"type":"identify"}')],
        [EventRef("in/a.jsonl", 2**40, None), EventRef("in/b.jsonl", 1, "x")],
    ],
)
def test_merged_op_makes_what_the_init_makes(refs):
    one = EventRefs.one(*refs[0]) if len(refs) == 1 else EventRefs(refs)
    if len(refs) == 1:
        assert one.flat() == EventRefs(refs).flat()
    made = merged_op(**MERGED, refs=one)
    assert made == MergedOp(**MERGED, refs=refs)
    assert type(made) is MergedOp
    assert list(made.refs) == refs
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.sobject = "Contact"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        # A list, which only __init__ converts.
        (
            {**MERGED, "refs": [EventRef("in/a.jsonl", 1, None)]},
            "these values of a MergedOp need its __post_init__",
        ),
        (MERGED, "a MergedOp has the fields"),
        ({**MERGED, "refs": EventRefs(), "extra": 1}, "a MergedOp has the fields"),
    ],
)
def test_merged_op_takes_every_field_and_refs_as_event_refs(values, message):
    with pytest.raises(TypeError, match=message):
        merged_op(**values)


@dataclasses.dataclass(frozen=True)
class Tagged:
    tags: tuple

    def __post_init__(self):
        object.__setattr__(self, "tags", tuple(self.tags))


def test_a_class_with_a_post_init_is_made_only_of_values_it_would_leave_alone():
    make = maker(Tagged, ready=lambda values: isinstance(values["tags"], tuple))
    assert make(tags=("a",)) == Tagged(("a",))
    with pytest.raises(TypeError, match="these values of a Tagged need its __post_init__"):
        make(tags=["a"])
