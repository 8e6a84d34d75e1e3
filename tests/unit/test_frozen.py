"""schemas.frozen.maker: the instance the dataclass's own __init__ makes, or a TypeError."""

import dataclasses

import pytest

from schemas.frozen import maker
from schemas.records import MergedOp


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
