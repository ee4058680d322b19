"""Hostile ISF documents: any JSON shape gives a table or a SymbolError, never another exception."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dbgauto.errors import SymbolError
from dbgauto.symbols.isf import load_isf

_leaf = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=5)
_json = st.recursive(_leaf, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                     max_leaves=12)
_doc = st.fixed_dictionaries(
    {"symbols": st.dictionaries(st.text(max_size=6), st.fixed_dictionaries({"address": _json}) | _json, max_size=4)},
    optional={"user_types": _json | st.dictionaries(st.text(max_size=5), _json, max_size=3), "metadata": _json},
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=_doc)
def test_any_isf_shape_is_a_table_or_a_symbol_error(tmp_path: Path, doc: dict) -> None:
    p = tmp_path / "f.json"
    p.write_text(json.dumps(doc))
    with contextlib.suppress(SymbolError):
        load_isf(p)
