"""``Catalog.prefetch``: the catalog file and its WAL read once, front to back, before the fleet queries
(docs/performance.md, "The fleet index on a cold cache"): the byte counts from os.stat of the real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbgauto.catalog import db as catalog_db
from dbgauto.catalog.db import CATALOG_NAME, Catalog
from dbgauto.catalog.records import HeaderFacts, ResultRecord, SourceState


def _fill(cat: Catalog, n: int) -> None:
    run = cat.start_run({})
    cat.add_results(
        run,
        [
            ResultRecord(SourceState(f"/src/PC{i % 7}/{i:05d}.dmp", 100 + i, i), "ok", header=HeaderFacts(build=19041))
            for i in range(n)
        ],
    )


def test_reads_file_and_wal_once(tmp_path: Path) -> None:
    path = tmp_path / CATALOG_NAME
    with Catalog.open(path) as cat:
        _fill(cat, 300)
        wal = Path(f"{path}-wal")
        assert wal.stat().st_size > 0  # not checkpointed yet: the WAL holds pages the queries read too
        want = path.stat().st_size + wal.stat().st_size
        before = [dict(r) for r in cat.summaries()]
        assert cat.prefetch() == want
        assert cat.prefetch() == 0  # once per open catalog
        assert [dict(r) for r in cat.summaries()] == before
    with Catalog.open(path, readonly=True) as cat:  # read-only opens too (catalog export, changes)
        wal = Path(f"{path}-wal")
        assert cat.prefetch() == path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def test_bounded_by_prefetch_max(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / CATALOG_NAME
    with Catalog.open(path) as cat:
        _fill(cat, 50)
        cat.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        monkeypatch.setattr(catalog_db, "PREFETCH_MAX", 3 * 4096)
        monkeypatch.setattr(catalog_db, "PREFETCH_BLOCK", 4096)
        assert path.stat().st_size > 3 * 4096
        assert cat.prefetch() == 3 * 4096
