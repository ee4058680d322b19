"""Discovery by signature on real folders: extensions do not matter, temp files and the output folder are skipped."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dbgauto.batch.discover import discover, has_dump_signature


def test_finds_dumps_by_signature_not_extension(synth_tree) -> None:  # type: ignore[no-untyped-def]
    found = discover([synth_tree.root])
    assert [f.path for f in found] == sorted(p.resolve() for p in synth_tree.all_dumps())
    assert all(not f.explicit for f in found)
    names = {f.path.name for f in found}
    assert "full32" in names
    assert "complete64.bin" in names
    assert "notes.dmp" not in names  # MDMP: a .dmp that is not a kernel dump
    one = found[0]
    st = one.path.stat()
    assert (one.size, one.mtime_ns) == (st.st_size, st.st_mtime_ns)


def test_skips_partial_temp_files_and_the_output_folder(synth_tree, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = synth_tree.good[0]
    partial = good.parent / f".{good.name}.abc123.partial"
    partial.write_bytes(good.read_bytes()[:0x3000])  # a PAGEDU64 file, but our own unfinished temp file
    out = synth_tree.root / "a" / "out"
    (out / "small").mkdir(parents=True)
    (out / "small" / "x.mini.dmp").write_bytes(good.read_bytes()[:0x3000])
    paths = {f.path for f in discover([synth_tree.root], exclude=[out])}
    assert partial.resolve() not in paths
    assert not any(out.resolve() in p.parents for p in paths)
    assert len(paths) == len(synth_tree.all_dumps())


def test_explicit_files_are_kept_even_when_not_dumps(synth_tree) -> None:  # type: ignore[no-untyped-def]
    note = synth_tree.not_dumps[0]
    found = discover([note, synth_tree.good[0], synth_tree.good[0]])  # duplicates collapse
    assert [f.path for f in found] == sorted([note.resolve(), synth_tree.good[0].resolve()])
    assert all(f.explicit for f in found)
    assert not has_dump_signature(note)
    assert has_dump_signature(synth_tree.good[0])


def test_since_filters_by_mtime(synth_tree) -> None:  # type: ignore[no-untyped-def]
    old = synth_tree.good[0]
    past = time.time() - 10 * 86400
    os.utime(old, (past, past))
    found = {f.path for f in discover([synth_tree.root], since=datetime.fromtimestamp(time.time() - 86400, UTC))}
    assert old.resolve() not in found
    assert synth_tree.good[1].resolve() in found


def test_missing_source_and_symlink_loop(tmp_path: Path, synth_tree) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FileNotFoundError, match="no such file"):
        discover([tmp_path / "nope"])
    loop = synth_tree.root / "a" / "loop"
    loop.symlink_to(synth_tree.root, target_is_directory=True)
    assert len(discover([synth_tree.root])) == len(synth_tree.all_dumps())  # not followed, terminates
