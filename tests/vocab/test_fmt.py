"""Report numbers: addresses read back exactly as the debugger printed them in real ``lm`` listings."""

from __future__ import annotations

import re
from pathlib import Path

from dbgauto.vocab.fmt import addr_text, hex_text

_LM64 = re.compile(r"^([0-9a-f]{8}`[0-9a-f]{8}) ([0-9a-f]{8}`[0-9a-f]{8}) ", re.M)
_LM32 = re.compile(r"^([0-9a-f]{8}) ([0-9a-f]{8})   \w", re.M)


def _lm_addresses(text: str, pattern: re.Pattern[str]) -> list[str]:
    return [a for m in pattern.finditer(text) for a in m.groups()]


def test_addresses_match_windbg_lm_columns(transcripts_dir: Path) -> None:
    x64 = (transcripts_dir / "D01_msdocs_debug_universal_drivers_live_kd_lab.log").read_text(errors="replace")
    x86 = (transcripts_dir / "D05_msdocs_lm_command.log").read_text(errors="replace")
    wide, narrow = _lm_addresses(x64, _LM64), _lm_addresses(x86, _LM32)
    assert len(wide) >= 10
    assert len(narrow) >= 4
    for printed in wide:
        assert addr_text(int(printed.replace("`", ""), 16), True) == printed
    for printed in narrow:
        assert addr_text(int(printed, 16), False) == printed
        assert addr_text(int(printed, 16) | 0xFFFFFFFF00000000, False) == printed  # sign-extended x86 pointer


def test_hex_text() -> None:
    assert hex_text(None) == ""
    assert addr_text(None) == ""
    assert hex_text(0xD1) == "0xd1"
    assert hex_text(0xD1, 8) == "0x000000d1"
    assert hex_text(-5) == "-0x5"  # never "0x-5"
    assert hex_text(0xFFFFF80012345678, 8) == "0xfffff80012345678"  # width is a minimum
