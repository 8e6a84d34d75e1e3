"""Instances of the frozen dataclasses built per element (events, ops) without their __init__."""

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def maker(cls: type[T], ready: Callable[[dict[str, Any]], bool] | None = None) -> Callable[..., T]:
    """A function `make(**values)` that gives the instance of `cls` that `cls(**values)` gives, for `values`
    naming every field: a frozen dataclass's __init__ sets each field through object.__setattr__, which
    cost a tenth of parsing or mapping an event.

    make() skips a __post_init__, so `cls` may only have one with `ready`, which says of the values whether
    the __post_init__ would leave them as they are; make() refuses the values it does not accept.
    """
    if hasattr(cls, "__post_init__") and ready is None:
        raise TypeError(f"{cls.__name__} has a __post_init__, which make() would skip")
    names = frozenset(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    new = object.__new__

    def make(**values: Any) -> T:
        if values.keys() != names:
            raise TypeError(f"a {cls.__name__} has the fields {sorted(names)}, not {sorted(values)}")
        if ready is not None and not ready(values):
            raise TypeError(f"these values of a {cls.__name__} need its __post_init__, which make() skips")
        instance = new(cls)
        instance.__dict__.update(values)
        return instance

    return make
