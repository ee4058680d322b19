"""util.frozen.fast_init: the same class as the dataclass made it, only built faster (or left as it was)."""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass, field

import pytest

from dbgauto.util.frozen import fast_init


@dataclass(frozen=True, slots=True)
class PlainDriver:
    name: str
    base: int
    size: int = 0x1000
    stamp: int | None = None
    tag: str = field(default="x", kw_only=True)
    _fast_set0: int = field(default=7, kw_only=True)  # a field named like the generated code's helpers


@fast_init
@dataclass(frozen=True, slots=True)
class FastDriver:  # the same declaration, with fast_init
    name: str
    base: int
    size: int = 0x1000
    stamp: int | None = None
    tag: str = field(default="x", kw_only=True)
    _fast_set0: int = field(default=7, kw_only=True)


def test_fast_init_builds_the_same_frozen_records() -> None:
    plain, fast = PlainDriver, FastDriver
    assert fast.__init__ is not plain.__init__
    calls = [(("a.sys", 1), {}), (("b.sys", 2, 3, 4), {"tag": "y"}), ((), {"name": "c", "base": 5, "_fast_set0": 1})]
    for args, kwargs in calls:
        p, f = plain(*args, **kwargs), fast(*args, **kwargs)
        assert [getattr(f, n) for n in f.__slots__] == [getattr(p, n) for n in p.__slots__]
        assert repr(f).split("(", 1)[1] == repr(p).split("(", 1)[1]
        assert f == fast(*args, **kwargs)
        assert hash(f) == hash(fast(*args, **kwargs))
        assert pickle.loads(pickle.dumps(f)) == f
        assert dataclasses.replace(f, base=9).base == 9
        with pytest.raises(dataclasses.FrozenInstanceError):
            f.base = 3  # type: ignore[misc]
    for cls in (plain, fast):  # the same signature: the same refusals
        with pytest.raises(TypeError):
            cls("a.sys")
        with pytest.raises(TypeError):
            cls("a.sys", 1, 2, 3, "positional tag")
        with pytest.raises(TypeError):
            cls("a.sys", 1, colour="red")


def test_a_class_it_cannot_build_exactly_is_left_as_it_was() -> None:
    @dataclass(frozen=True, slots=True)
    class Checked:
        value: int

        def __post_init__(self) -> None:
            if self.value < 0:
                raise ValueError("negative")

    @dataclass(frozen=True, slots=True)
    class Listed:
        items: list[int] = field(default_factory=list)

    @dataclass(slots=True)
    class Mutable:
        value: int

    @dataclass(frozen=True)
    class Unslotted:
        value: int

    for cls in (Checked, Listed, Mutable, Unslotted):
        before = cls.__init__
        assert fast_init(cls).__init__ is before
    with pytest.raises(ValueError, match="negative"):
        Checked(-1)
