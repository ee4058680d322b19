"""parse_lm and parse_bugcheck on the transcripts; expected values were read from the .log files."""

from __future__ import annotations

import re
from pathlib import Path

from dbgauto.debugtext import parse_bugcheck, parse_lm, split_commands

_META_RE = re.compile(r"^# (?:source|kind|extracted|note):|^# ---$")


def transcript(transcripts_dir: Path, stem: str) -> str:
    path = next(transcripts_dir.glob(f"{stem}_*.log"))
    return "\n".join(line for line in path.read_text(encoding="utf-8").splitlines() if not _META_RE.match(line))


def output_of(transcripts_dir: Path, stem: str, command: str) -> str:
    return next(b.output for b in split_commands(transcript(transcripts_dir, stem)) if b.command == command)


def test_d01_lm_64bit(transcripts_dir: Path) -> None:
    modules = parse_lm(output_of(transcripts_dir, "D01", "lm"))
    assert [m.name for m in modules] == [
        "volmgrx",
        "mcupdate_GenuineIntel",
        "werkernel",
        "CLFS",
        "tm",
        "PSHED",
        "BOOTVID",
        "spaceport",
        "Wdf01000",
        "CI",
    ]
    first = modules[0]
    assert (first.start, first.end) == (0xFFFFF80109200000, 0xFFFFF8010925F000)
    assert (first.status, first.image_name) == ("no symbols", None)  # row ends in trailing spaces
    assert (modules[2].status, modules[2].image_name) == ("export symbols", "werkernel.sys")
    assert modules[3].image_name == "CLFS.SYS"
    assert modules[9].end == 0xFFFFF80109561000
    assert not any(m.unloaded for m in modules)


def test_d01_lm_verbose(transcripts_dir: Path) -> None:
    (module,) = parse_lm(output_of(transcripts_dir, "D01", "lm m tabletaudiosample v"))
    assert module.name == "tabletaudiosample"
    assert module.status == "private pdb symbols"
    assert module.symbol_file == (
        r"C:\Debuggers\sym\TabletAudioSample.pdb\E992C4803EBE48C7B23DC1596495CE181\TabletAudioSample.pdb"
    )
    assert module.image_name == "tabletaudiosample.sys"  # from "Image name:"
    assert module.details["Image path"] == r"\SystemRoot\system32\drivers\tabletaudiosample.sys"
    assert module.details["Timestamp"] == "Thu Dec 10 12:20:26 2015 (5669DE8A)"
    assert module.details["CheckSum"] == "0004891E"
    assert not any(key.startswith("Browse") for key in module.details)  # DML text lines


def test_d05_lm_32bit_deferred_and_unloaded(transcripts_dir: Path) -> None:
    modules = parse_lm(output_of(transcripts_dir, "D05", "lm m s*"))
    assert [(m.name, m.unloaded) for m in modules] == [
        ("sysaudio", False),
        ("srv", False),
        ("sr", False),
        ("serial", False),
        ("serenum", False),
        ("swenum", False),
        ("swmidi.sys", True),
        ("splitter.sys", True),
        ("Sfloppy.SYS", True),
    ]
    assert (modules[0].start, modules[0].end, modules[0].status) == (0xF9F73000, 0xF9F7FD80, "deferred")
    serenum = modules[4]
    assert serenum.status is None
    assert serenum.symbol_file == r"e:\mysymbols\SereEnum.pdb\......."  # shortened by the doc
    assert (modules[6].start, modules[6].end) == (0xF9F53000, 0xF9F61000)


def test_d05_user_mode_lm(transcripts_dir: Path) -> None:
    modules = parse_lm(output_of(transcripts_dir, "D05", "lm"))
    assert [m.name for m in modules] == ["stst", "msvcrt", "ADVAPI32", "RPCRT4", "kernel32", "ntdll"]
    ntdll = modules[5]
    assert (ntdll.start, ntdll.end) == (0x7C900000, 0x7C9B0000)
    assert (ntdll.status, ntdll.symbol_file) == ("private pdb symbols", r"c:\db20sym\ntdll.pdb")
    by_name = {m.name: (m.start, m.end) for m in parse_lm(output_of(transcripts_dir, "D05", "lm sm"))}
    assert by_name == {m.name: (m.start, m.end) for m in modules}  # lm sm: same modules sorted by name


def test_t06_lmvm(transcripts_dir: Path) -> None:
    (module,) = parse_lm(output_of(transcripts_dir, "T06", "lmvm Driver"))
    assert (module.start, module.end, module.name) == (0xFFFFF804789A0000, 0xFFFFF804789A7000, "Driver")
    assert module.status == "no symbols"
    assert module.image_name == "Driver.sys"
    assert module.details["Image path"] == r"\??\C:\Users\User\source\repos\Driver\x64\Release\Driver.sys"
    assert module.details["ImageSize"] == "00007000"
    assert "Information from resource tables" not in module.details


def test_lm_ignores_other_output(transcripts_dir: Path) -> None:
    assert parse_lm(output_of(transcripts_dir, "T06", "dps fffff804`789a2030 l1")) == []
    assert parse_lm("") == []


def test_t07_bugcheck_command(transcripts_dir: Path) -> None:
    info = parse_bugcheck(output_of(transcripts_dir, "T07", ".bugcheck"))
    assert info is not None
    assert info.code == 0x139
    assert info.parameters == (0x1D, 0xFFFFB88F1487EC30, 0xFFFFB88F1487EB88, 0)
    assert info.source == "bugcheck"


def test_t06_mex_crash_and_di(transcripts_dir: Path) -> None:
    crash = parse_bugcheck(output_of(transcripts_dir, "T06", "!crash"))
    assert crash is not None
    assert (crash.code, crash.source) == (0x19, "bugcheck")  # "Bugcheck code 00000019" wins over "Bugcheck: 19"
    assert crash.parameters == (0x22, 0xFFFFBD06D46E0000, 1, 0)
    di = parse_bugcheck(output_of(transcripts_dir, "T06", "!di"))
    assert di is not None
    assert (di.code, di.parameters, di.source) == (0x19, (0x22, 0xFFFFBD06D46E0000, 1, 0), "mex")


def test_t08_mex_di_bugcheck(transcripts_dir: Path) -> None:
    di = parse_bugcheck(output_of(transcripts_dir, "T08", "!mex.di"))
    assert di is not None
    assert (di.code, di.parameters) == (0xD1, (0xFFFFF803712E5000, 2, 8, 0xFFFFF803712E5000))


def test_t12_banner_summary(transcripts_dir: Path) -> None:
    info = parse_bugcheck(split_commands(transcript(transcripts_dir, "T12"))[0].output)
    assert info is not None
    assert (info.code, info.source) == (0x3B, "summary")
    assert info.parameters == (0xC0000005, 0xFFFFF8066F2A6034, 0xFFFFA005550BD940, 0)


def test_no_bugcheck() -> None:
    assert parse_bugcheck("Mex External 3.0.0.7172 Loaded!") is None
    assert parse_bugcheck("") is None
