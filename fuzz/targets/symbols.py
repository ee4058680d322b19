"""Symbol readers: PDB (MSF streams, TPI/DBI), cabinets, ISF JSON. The first 3 bytes choose the reader."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import atheris, main

with atheris.instrument_imports():
    from dbgauto.symbols.cab import read_cab
    from dbgauto.symbols.isf import isf_to_table
    from dbgauto.symbols.pdb import pdb_to_table


def body(data: bytes) -> None:
    kind, rest = data[:3], data[3:]
    if kind == b"PDB":
        pdb_to_table(rest)
    elif kind == b"CAB":
        read_cab(rest, max_output=1 << 20)
    else:
        try:
            doc = json.loads(rest)
        except (ValueError, RecursionError):
            return  # not JSON: the ISF loader's json step refuses it, not ours to test
        if isinstance(doc, dict):
            isf_to_table(doc)


if __name__ == "__main__":
    main(body)
