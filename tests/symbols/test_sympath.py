"""Symbol-path syntax as documented for WinDbg's .sympath / _NT_SYMBOL_PATH."""

from __future__ import annotations

from pathlib import Path

from dbgauto.symbols.sympath import local_dir, parse_symbol_path, resolve_symbol_path

MS = "https://msdl.microsoft.com/download/symbols"


def test_srv_with_windows_downstream_and_url() -> None:
    p = parse_symbol_path(rf"srv*C:\symbols*{MS}")
    (e,) = p.elements
    assert e.kind == "srv"
    assert e.stores == (r"C:\symbols", MS)
    assert p.uses_network
    assert p.urls == [MS]
    assert local_dir(r"C:\symbols", windows=False) is None  # a Windows path is not a relative POSIX name
    assert local_dir(r"C:\symbols", windows=True) == Path(r"C:\symbols")


def test_srv_url_alone_gets_default_downstream_and_srv_dir_is_local() -> None:
    p = parse_symbol_path(f"srv*{MS};srv*/opt/store")
    assert [e.stores for e in p.elements] == [("", MS), ("/opt/store",)]
    assert not p.elements[1].uses_network


def test_symsrv_dll_form_cache_and_plain_dirs() -> None:
    p = parse_symbol_path(r"cache*D:\cache;symsrv*symsrv.dll*\\server\share\sym*" + MS + r";C:\local;;/tmp/flat")
    assert [e.kind for e in p.elements] == ["srv", "dir", "dir"]
    assert p.elements[0].stores == (r"\\server\share\sym", MS)
    assert all(e.cache == r"D:\cache" for e in p.elements)  # cache* applies to every element to its right
    assert local_dir(r"\\server\share\sym", windows=False) is None
    assert p.elements[2].stores == ("/tmp/flat",)
    assert p.warnings == ()


def test_cache_applies_only_to_the_right_and_empty_cache_is_default() -> None:
    p = parse_symbol_path("/a;cache*;srv*/b*" + MS)
    assert p.elements[0].cache is None
    assert p.elements[1].cache == ""


def test_oddities_become_warnings_not_errors() -> None:
    p = parse_symbol_path("srv*;foo*bar;symsrv*other.dll*/x")
    assert [e.kind for e in p.elements] == ["dir", "srv"]
    assert len(p.warnings) == 3


def test_resolution_order_and_no_network_by_default(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "_NT_SYMBOL_PATH": f"srv*{MS}", "DBGAUTO_SYMBOL_PATH": "/dbgauto/own"}
    assert resolve_symbol_path("/arg", env).source == "argument"
    r = resolve_symbol_path(None, env)
    assert (r.source, r.path.text) == ("DBGAUTO_SYMBOL_PATH", "/dbgauto/own")
    del env["DBGAUTO_SYMBOL_PATH"]
    assert resolve_symbol_path(None, env).source == "_NT_SYMBOL_PATH"
    del env["_NT_SYMBOL_PATH"]
    r = resolve_symbol_path(None, env)
    assert r.source == "default"
    assert not r.path.uses_network
    assert r.path.elements[0].stores == (str(tmp_path / ".cache" / "dbgauto" / "symbols"),)
