"""Large dumps (Complete, Kernel bitmap): header, run list, bitmap and the page-table walk."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import as_file, atheris, main

with atheris.instrument_imports():
    from dbgauto.cli.info import describe
    from dbgauto.kdump.reader import KernelDump
    from dbgauto.kernel.open import read_parts


def body(data: bytes) -> None:
    with KernelDump.open(as_file(data)) as dump:
        describe(dump)
        if dump.has_physical_memory:
            dump.read_physical(0x1000, 0x40, zero_fill=True)
        read_parts(dump)  # the kernel walk: KDBG search, page tables, module list


if __name__ == "__main__":
    main(body)
