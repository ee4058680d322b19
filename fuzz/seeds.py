"""Seed inputs for the fuzz targets, built at run time from ../shared and small generated dumps (never committed)."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
if not SHARED.is_dir():
    SHARED = Path("/work/shared")


def _header64(dump_type: int) -> bytearray:
    """A DUMP_HEADER64 filled with "PAGE", with the fields a reader needs (offsets: dump-format spec)."""
    hdr = bytearray(b"PAGE" * 0x800)
    hdr[0:8] = b"PAGEDU64"
    struct.pack_into("<II", hdr, 0x8, 0xF, 19041)
    struct.pack_into("<Q", hdr, 0x10, 0x1AD000)  # DirectoryTableBase
    struct.pack_into("<I", hdr, 0x30, 0x8664)
    struct.pack_into("<I", hdr, 0x34, 1)
    struct.pack_into("<I", hdr, 0x38, 0xD1)
    struct.pack_into("<4Q", hdr, 0x40, 0xFFFFCF8E6F2A6000, 2, 0, 0xFFFFF8066F2A6034)
    struct.pack_into("<I", hdr, 0xF98, dump_type)
    return hdr


def bitmap_dump(pages: int = 4) -> bytes:
    hdr = _header64(6)
    bits = 64
    bm = bytearray(bits // 8)
    for p in range(pages):
        bm[p >> 3] |= 1 << (p & 7)
    first = 0x2000 + 0x38 + len(bm)
    sub = b"SDMPDUMP" + bytes(0x18) + struct.pack("<QQQ", first, pages, bits)
    return bytes(hdr) + sub + bytes(bm) + bytes(range(256)) * 16 * pages


def full_dump() -> bytes:
    hdr = _header64(1)
    runs = [(0x1, 2), (0x10, 1)]  # (BasePage, PageCount)
    struct.pack_into("<IIQ", hdr, 0x88, len(runs), 0, sum(c for _, c in runs))
    for i, (base, count) in enumerate(runs):
        struct.pack_into("<QQ", hdr, 0x88 + 0x10 + 0x10 * i, base, count)
    return bytes(hdr) + bytes(0x1000 * 3)


def small_dumps() -> list[bytes]:
    out = []
    real = SHARED / "dumps" / "triage_x64.dmp"
    if real.is_file():
        out.append(real.read_bytes())
    try:
        from dbgauto_testkit.triage_handmade import build_handmade

        out.append(build_handmade().data)
    except Exception as exc:  # the seed is optional; the real dump is enough to start
        print(f"seeds: handmade small dump unavailable: {exc}", file=sys.stderr)
    return out


def large_dumps() -> list[bytes]:
    return [bitmap_dump(), full_dump()]


def transcripts() -> list[bytes]:
    return [p.read_bytes() for p in sorted((SHARED / "transcripts").glob("*.log"))]


def _isf_seed(path: Path, keep: int = 8) -> bytes:
    """A real ISF document cut down to a few entries per table (a small, valid seed)."""
    import json
    import lzma

    doc = json.loads(lzma.decompress(path.read_bytes()))
    for key, value in list(doc.items()):
        if isinstance(value, dict) and key != "metadata":
            doc[key] = dict(list(value.items())[:keep])
    return json.dumps(doc).encode()


def _pdb_seed(work: Path) -> bytes | None:
    """A small PDB that clang + lld-link write (None when they are not installed)."""
    import shutil
    import subprocess

    if not (shutil.which("clang") and shutil.which("lld-link")):
        return None
    src = work / "seed.c"
    src.write_text(
        "struct S { int a; long long b; }; int f(struct S *s) { return s->a; }\n"
        "int __stdcall DllMain(void *h, unsigned r, void *p) { return 1; }\n"
    )
    try:
        subprocess.run(
            [
                "clang",
                "--target=x86_64-pc-windows-msvc",
                "-g",
                "-gcodeview",
                "-c",
                str(src),
                "-o",
                str(work / "seed.obj"),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            [
                "lld-link",
                "/dll",
                "/noentry",
                "/debug",
                f"/pdb:{work / 'seed.pdb'}",
                f"/out:{work / 'seed.dll'}",
                str(work / "seed.obj"),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"seeds: no PDB seed: {exc}", file=sys.stderr)
        return None
    return (work / "seed.pdb").read_bytes()


def symbol_files() -> list[bytes]:
    import tempfile

    out: list[bytes] = []
    isf = sorted((SHARED / "symbols").rglob("*.json.xz"), key=lambda p: p.stat().st_size)
    if isf:
        out.append(b"ISF" + _isf_seed(isf[0]))
    with tempfile.TemporaryDirectory() as tmp:
        pdb = _pdb_seed(Path(tmp))
    if pdb is not None:
        out.append(b"PDB" + pdb)
    try:
        from dbgauto_testkit.cabwriter import build_cab

        out.append(b"CAB" + build_cab([("ntkrnlmp.pd_", b"hello " * 100), ("b.txt", b"x")]))
    except Exception as exc:
        print(f"seeds: no CAB seed: {exc}", file=sys.stderr)
    return out


SEEDS = {
    "small_dump": small_dumps,
    "large_dump": large_dumps,
    "convert": large_dumps,
    "debugtext": transcripts,
    "symbols": symbol_files,
}


def write_seeds(target: str, folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    items = SEEDS[target]()
    for i, data in enumerate(items):
        (folder / f"seed-{i:03d}").write_bytes(data)
    return len(items)
