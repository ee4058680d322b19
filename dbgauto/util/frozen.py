"""A faster ``__init__`` for the frozen, slotted dataclasses made by the hundred per dump.

Why: a frozen dataclass's generated ``__init__`` stores each field through ``object.__setattr__`` (its own
``__setattr__`` refuses), about 0.2 us per field on CPython 3.11; a small dump's ~150 drivers are read into four
such records each (the listed entry, the symbol layer's module, the unwinder's module, the driver fact), which made
that alone about 0.5 ms of a dump's 5. :func:`fast_init` swaps in an ``__init__`` that stores through the slots'
own descriptors (a third of the cost). Everything else stays the dataclass's: frozen (assignment still raises
``FrozenInstanceError``), equality, hashing, ``repr``, ``replace``, pickling.

A class it cannot do exactly (no slots, not frozen, a ``__post_init__``, a default factory, a field outside
``__init__``, an ``InitVar``) is returned unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

__all__ = ["fast_init"]

C = TypeVar("C", bound=type)


def fast_init(cls: C) -> C:
    """Give a frozen, slotted dataclass an ``__init__`` that fills its slots directly (same signature)."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__ or hasattr(cls, "__post_init__"):
        return cls
    fields = dataclasses.fields(cls)
    if len(fields) != len(getattr(cls, "__dataclass_fields__", {})):  # an InitVar is not a field() but is there
        return cls
    env: dict[str, Any] = {}
    h = "_fast"  # the helpers' prefix: one no field name starts with (a parameter would hide a helper)
    while any(f.name.startswith(h) for f in fields):
        h = "_" + h
    positional, keyword, body = [], [], []
    for i, f in enumerate(fields):
        if not f.init or f.default_factory is not dataclasses.MISSING:
            return cls
        env[f"{h}_set{i}"] = cls.__dict__[f.name].__set__  # the slot's member descriptor
        param = f.name
        if f.default is not dataclasses.MISSING:
            env[f"{h}_default{i}"] = f.default
            param += f"={h}_default{i}"
        (keyword if f.kw_only else positional).append(param)
        body.append(f"    {h}_set{i}(self, {f.name})")
    signature = ", ".join(["self", *positional, *(["*", *keyword] if keyword else [])])
    # only the dataclass's own field names (identifiers) enter the code, never data
    exec(f"def __init__({signature}):\n" + ("\n".join(body) or "    pass"), env)
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init  # type: ignore[misc]
    return cls
