"""Small memory dumps: open, triage sections, and the kernel view `info` prints."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import as_file, atheris, main

with atheris.instrument_imports():
    from dbgauto.cli.info import _kernel_view, describe
    from dbgauto.kdump.reader import KernelDump


def body(data: bytes) -> None:
    with KernelDump.open(as_file(data)) as dump:
        describe(dump)
        if dump.dump_type == 4:
            _kernel_view(dump)


if __name__ == "__main__":
    main(body)
