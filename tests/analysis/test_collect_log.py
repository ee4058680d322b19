"""Facts from saved debugger console logs, checked against what the transcripts show (read by hand).

Each report rendered from a transcript must show the same bug check, culprit and stack as the transcript.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from dbgauto.analysis.facts import CrashFacts
from dbgauto.analysis.from_log import facts_from_log
from dbgauto.report.render import ReportRenderer


@dataclass(frozen=True)
class Expect:
    stem: str
    code: int
    name: str
    params: tuple[int, ...]
    culprit: str | None
    first_frames: tuple[str, ...]
    frame_count: int
    build: int | None
    crash_time: datetime | None
    process: str | None


# Values copied from the transcripts' text (Arg lines, IMAGE_NAME, STACK_TEXT, banner), not from our parser.
CASES = [
    Expect(
        "T01",
        0xD1,
        "DRIVER_IRQL_NOT_LESS_OR_EQUAL",
        (0xFFFFD8024AAA8010, 0x2, 0x0, 0xFFFFF80060DA1981),
        "myfault.sys",
        ("nt!KeBugCheckEx", "nt!KiBugCheckDispatch+0x69", "nt!KiPageFault+0x469", "myfault+0x1981"),
        12,
        19041,
        None,
        "notmyfault64.exe",
    ),
    Expect(
        "T11",
        0x124,
        "WHEA_UNCORRECTABLE_ERROR",
        (0x10, 0xFFFF9C0D98CC1028, 0xFFFF9C0D7F97192C, 0xFFFF9C0D7F9971A0),
        "GenuineIntel.sys",
        ("nt!KeBugCheckEx", "nt!WheaReportHwError+0x4cf", "nt!WheaHwErrorReportSubmitDeviceDriver+0xe9"),
        15,
        19041,
        datetime(2026, 10, 1, 19, 13, 42, 872000, UTC),  # "Thu Oct  1 14:13:42.872 2026 (UTC - 5:00)"
        "System",
    ),
    Expect(
        "T12",
        0x3B,
        "SYSTEM_SERVICE_EXCEPTION",
        (0xC0000005, 0xFFFFF8066F2A6034, 0xFFFFA005550BD940, 0x0),
        None,  # IMAGE_NAME: Unknown_Image
        ("nt!RtlpUnwindPrologue+0x204",),
        1,
        22621,
        datetime(2025, 10, 15, 6, 9, 32, 146000, UTC),  # "Wed Oct 15 14:09:32.146 2025 (UTC + 8:00)"
        "sppsvc.exe",
    ),
    Expect(
        "D03",
        0xD1,
        "DRIVER_IRQL_NOT_LESS_OR_EQUAL",
        (0x4, 0x2, 0x1, 0xF832035C),
        "USBPORT.SYS",
        ("USBPORT!USBPORT_BadRequestFlush+0x7c", "USBPORT!USBPORT_DM_TimerDpc+0x10c", "nt!KiTimerListExpire+0xf3"),
        5,
        None,
        None,
        None,
    ),
]


def _facts(transcripts_dir: Path, stem: str) -> CrashFacts:
    path = next(transcripts_dir.glob(f"{stem}_*.log"))
    return facts_from_log(path.read_text(encoding="utf-8"), source=path)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.stem)
def test_log_facts_match_transcript(transcripts_dir: Path, case: Expect) -> None:
    facts = _facts(transcripts_dir, case.stem)
    assert facts.bugcheck is not None
    assert (facts.bugcheck.code, facts.bugcheck.name) == (case.code, case.name)
    assert tuple(p.value for p in facts.bugcheck.parameters) == case.params
    assert (facts.culprit.name if facts.culprit else None) == case.culprit
    assert facts.stack is not None
    assert facts.stack.kind == "symbolic"
    assert len(facts.stack.frames) == case.frame_count
    assert tuple(f.symbol for f in facts.stack.frames[: len(case.first_frames)]) == case.first_frames
    assert facts.os_build == case.build
    if case.crash_time is not None:
        assert facts.crash_time == case.crash_time
    assert facts.process_name == case.process
    assert facts.engine == "debugger-log"
    assert CrashFacts.from_dict(facts.to_dict()) == facts


def test_unknown_image_is_a_warning_not_a_culprit(transcripts_dir: Path) -> None:
    facts = _facts(transcripts_dir, "T12")
    assert facts.culprit is None
    assert any("Unknown_Image" in w for w in facts.warnings)
    assert facts.os_name is None  # "Windows 7 Kernel Version 22621": the old debugger's name is wrong for the build


def test_debugger_version_and_raw_output_are_kept(transcripts_dir: Path) -> None:
    facts = _facts(transcripts_dir, "T11")
    assert facts.engine_version == "10.0.29617.1000"
    assert "!analyze -v" in facts.raw_output
    assert "WHEA_UNCORRECTABLE_ERROR (124)" in facts.raw_output["!analyze -v"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.stem)
def test_html_report_shows_bugcheck_culprit_and_stack(transcripts_dir: Path, tmp_path: Path, case: Expect) -> None:
    facts = _facts(transcripts_dir, case.stem)
    page = ReportRenderer().write_dump_report(facts, tmp_path, "html").read_text(encoding="utf-8")
    parser = _Text()
    parser.feed(page)
    text = "".join(parser.parts)
    assert case.name in text
    assert f"0x{case.code:X}" in text
    if case.culprit:
        summary = text.split("Bug check parameters")[0]
        assert case.culprit in summary
    positions = [text.index(sym) for sym in case.first_frames]
    assert positions == sorted(positions)


def test_lm_modules_become_drivers(transcripts_dir: Path) -> None:
    facts = _facts(transcripts_dir, "D05")
    # "f9f73000 f9f7fd80   sysaudio     (deferred)" and "Unloaded modules: f9f53000 f9f61000   swmidi.sys"
    first = facts.drivers[0]
    assert (first.name, first.base, first.size) == ("sysaudio", 0xF9F73000, 0xF9F7FD80 - 0xF9F73000)
    assert (facts.unloaded_drivers[0].name, facts.unloaded_drivers[0].start) == ("swmidi.sys", 0xF9F53000)
    assert facts.unloaded_drivers[0].end == 0xF9F61000


def test_text_without_debugger_output_says_so(transcripts_dir: Path) -> None:
    facts = _facts(transcripts_dir, "D04")  # a reference page: `.dump` options, one user-mode prompt, no output
    assert facts.bugcheck is None
    assert any("no debugger output recognised" in w for w in facts.warnings)
    assert facts_from_log("").warnings == (
        "no debugger output recognised (no banner, !analyze, .bugcheck, vertarget, lm or k)",
    )


def test_lm_stems_of_inbox_drivers_are_not_third_party(transcripts_dir: Path) -> None:
    """``lm`` prints stems (``volmgrx``, ``spaceport``, ``Wdf01000``): matched against the inbox list by stem."""
    text = (transcripts_dir / "D01_msdocs_debug_universal_drivers_live_kd_lab.log").read_text(errors="replace")
    flags = {d.name: d.third_party for d in facts_from_log(text).drivers}
    assert flags["volmgrx"] is False
    assert flags["spaceport"] is False
    assert flags["Wdf01000"] is False
    assert flags["mcupdate_GenuineIntel"] is False
    assert flags["tabletaudiosample.sys"] is True  # the lab's own sample driver
