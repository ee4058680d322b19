"""What every target shares: run one input, accept only dbgauto's typed errors, write a file when a reader needs one."""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

try:
    import atheris
except ImportError:  # the regression tests (tests/fuzzfound) run the target bodies without atheris

    class _NoAtheris:
        @staticmethod
        def instrument_imports() -> contextlib.nullcontext[None]:
            return contextlib.nullcontext()

    atheris = _NoAtheris()  # type: ignore[assignment]

with atheris.instrument_imports():
    from dbgauto.errors import DbgautoError

_SHM = Path("/dev/shm")
_TMP = Path(tempfile.mkdtemp(prefix="dbgauto-fuzz-", dir=_SHM if _SHM.is_dir() else None))


def as_file(data: bytes, name: str = "input.dmp") -> Path:
    """The input as a file (the dump readers map files)."""
    path = _TMP / name
    path.write_bytes(data)
    return path


def expect_typed(func: Callable[[bytes], object]) -> Callable[[bytes], None]:
    """Wrap a target body: DbgautoError is the expected way to refuse input; anything else propagates (a finding)."""

    def run(data: bytes) -> None:
        with contextlib.suppress(DbgautoError):
            func(data)

    return run


def check(body: Callable[[bytes], object], data: bytes) -> None:
    """Run one input as the fuzzer does (for regression tests)."""
    expect_typed(body)(data)


def main(body: Callable[[bytes], object]) -> None:
    atheris.Setup(sys.argv, expect_typed(body))
    atheris.Fuzz()
