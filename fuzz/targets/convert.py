"""The converter: a large dump in, a small dump out (or a typed refusal)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import as_file, atheris, main

with atheris.instrument_imports():
    from dbgauto.engines.jobs import convert_dump


def body(data: bytes) -> None:
    src = as_file(data, "large.dmp")
    convert_dump(src, src.with_name("out.dmp"), overwrite=True)


if __name__ == "__main__":
    main(body)
