"""Helpers shared by the unit tests."""


def f(name, type_, **props):
    """One field of a describe (`fields[]`), createable, updateable and nillable unless `props` say not
    (a short name: the tests' describe tables list many)."""
    return {"name": name, "type": type_, "createable": True, "updateable": True, "nillable": True, **props}
