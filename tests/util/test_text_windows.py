"""Hazard group 8: UTF-16 logs (``.logopen /u``) and output that never raises UnicodeEncodeError.

The reference is the same real transcript (../shared, Japanese WinDbg Preview session) read as the UTF-8
file it is: encoded as WinDbg's ``.logopen /u`` writes it (UTF-16LE with a BOM) or as PowerShell 5.1's ``>``
does, ``report --from-log`` must produce the same facts.
"""

from __future__ import annotations

import codecs
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dbgauto.util.text import decode_log, detect_encoding

TRANSCRIPT = "T01_kernel_bitmap_dump_win10_19041_windbgpreview_ja.log"


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-16-le", codecs.BOM_UTF16_LE),  # .logopen /u
        ("utf-16-be", codecs.BOM_UTF16_BE),
        ("utf-8", codecs.BOM_UTF8),
        ("utf-32-le", codecs.BOM_UTF32_LE),
        ("utf-16-le", b""),  # no BOM: found by its NUL pattern
        ("utf-8", b""),
    ],
)
def test_decode_log_by_bom_and_pattern(encoding: str, bom: bytes) -> None:
    text = "kd> .bugcheck\nBugcheck code 0000009F\nArguments 00000000`00000003 ドライバー\n"
    data = bom + text.encode(encoding)
    assert detect_encoding(data)[0] == encoding
    assert decode_log(data) == text


def _report_json(log: Path, out: Path) -> dict[str, object]:
    res = subprocess.run(
        [sys.executable, "-m", "dbgauto", "report", "--from-log", str(log), "--out", str(out), "-f", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    (written,) = out.glob("*.json")
    facts = json.loads(written.read_text(encoding="utf-8"))
    facts.pop("source", None)  # names the log file, which differs
    return facts


def test_report_from_a_utf16_log_equals_the_utf8_one(transcripts_dir: Path, tmp_path: Path) -> None:
    original = transcripts_dir / TRANSCRIPT
    text = original.read_text(encoding="utf-8")
    assert "\r\n" not in text
    utf16 = tmp_path / "windbg_u.log"
    utf16.write_bytes(codecs.BOM_UTF16_LE + text.replace("\n", "\r\n").encode("utf-16-le"))
    expected = _report_json(original, tmp_path / "a")
    got = _report_json(utf16, tmp_path / "b")
    assert got == expected
    assert json.dumps(expected).count("bugcheck") > 0


def test_output_to_a_narrow_console_never_raises(tmp_path: Path) -> None:
    # a cp437 console or a redirect in an ASCII locale: names from dumps are replaced, not a crash (exit 3)
    out = tmp_path / "rapports_été_ドライバー"
    log = tmp_path / "x.log"
    log.write_text("kd> .bugcheck\nBugcheck code 0000009F\n", encoding="utf-8")
    for enc in ("ascii", "cp437"):
        env = {**os.environ, "PYTHONIOENCODING": f"{enc}:strict", "PYTHONUTF8": "0"}
        res = subprocess.run(
            [sys.executable, "-m", "dbgauto", "report", "--from-log", str(log), "--out", str(out), "-f", "txt"],
            capture_output=True,
            env=env,
            check=False,
        )
        assert res.returncode == 0, res.stderr.decode(enc, "replace")
        assert b"file(s) written to" in res.stdout
        assert b"UnicodeEncodeError" not in res.stderr
