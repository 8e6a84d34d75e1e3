"""Instances of the frozen dataclasses built per element (events, ops) without their __init__."""

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def maker(cls: type[T]) -> Callable[..., T]:
    """A function `make(**values)` that gives the instance of `cls` that `cls(**values)` gives, for `values`
    naming every field: a frozen dataclass's __init__ sets each field through object.__setattr__, which
    cost a tenth of parsing or mapping an event. `cls` may not have a __post_init__ (it would be skipped).
    """
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has a __post_init__, which make() would skip")
    names = frozenset(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    new = object.__new__

    def make(**values: Any) -> T:
        if values.keys() != names:
            raise TypeError(f"a {cls.__name__} has the fields {sorted(names)}, not {sorted(values)}")
        instance = new(cls)
        instance.__dict__.update(values)
        return instance

    return make
