"""split_commands / split_command_line / parse_log on the real transcripts (expectations read from the .log files)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dbgauto.debugtext import parse_log, split_command_line, split_commands

# The cleaned transcripts carry `# source:`/`# kind:`/`# extracted:`/`# note:` header lines and `# ---` block
# separators; they are not debugger output, so the tests remove them (the parser is never told about them).
_META_RE = re.compile(r"^# (?:source|kind|extracted|note):|^# ---$")


def transcript(transcripts_dir: Path, stem: str) -> str:
    path = next(transcripts_dir.glob(f"{stem}_*.log"))
    return "\n".join(line for line in path.read_text(encoding="utf-8").splitlines() if not _META_RE.match(line))


def test_d01_prompt_forms_and_commands(transcripts_dir: Path) -> None:
    blocks = split_commands(transcript(transcripts_dir, "D01"))
    assert blocks[0].prompt == "0: kd>"  # no banner: the log starts with a prompt
    first = [(b.prompt, b.cpu, b.command) for b in blocks[:10]]
    assert first == [
        ("0: kd>", 0, ".prefer_dml 1"),
        ("0: kd>", 0, ".hh .prefer_dml"),
        ("0: kd>", 0, "vertarget"),
        ("0: Kd>", 0, "lm"),  # doc typo: capital K
        ("0: kd>", 0, ".symfix"),
        ("0: kd>", 0, r".sympath+ C:\WDK_Samples\Sysvad"),
        ("0: kd>", 0, ".reload /f"),
        ("0:000>", None, "dv"),  # user-mode prompt inside a kernel lab
        ("0: kd>", 0, "lm m tabletaudiosample v"),
        ("0: kd>", 0, "x /D /f tabletaudiosample!a*"),
    ]
    assert blocks[0].output == "DML versions of commands on by default"
    assert blocks[5].output == ""  # .sympath+ and .reload /f shared one doc block: two prompts, no output between
    assert blocks[7].mode == "user"
    assert blocks[0].mode == "kernel"
    assert blocks[-1].command == "qd"
    assert blocks[-1].output == ""


def test_d01_bare_kd_prompt_two_spaces_and_cpu_2(transcripts_dir: Path) -> None:
    blocks = split_commands(transcript(transcripts_dir, "D01"))
    bare = [b for b in blocks if b.prompt == "kd>"]
    assert [b.command for b in bare[:4]] == [
        "x tabletaudiosample!CAdapterCommon::*",
        "bm tabletaudiosample!CAdapterCommon::MixerVolumeWrite",
        "bl",
        "g",
    ]
    assert all(b.cpu is None for b in bare)
    dd = [b for b in blocks if b.line == "kd>  dd ffffb780`b7eee664"]
    assert len(dd) == 1
    assert dd[0].command == "dd ffffb780`b7eee664"
    assert not dd[0].glued
    assert dd[0].output.splitlines()[0] == "ffffb780`b7eee664  ffa00000 00000018 00000000 c52d7008"
    cpu2 = [b for b in blocks if b.cpu == 2]
    assert [b.command for b in cpu2] == ["dv", "dv"]
    assert [b.command for b in blocks if b.command.startswith("dt")] == ["dt lVolume", "dt dt lVolume", "dt lVolume"]


def test_d01_semicolon_without_spaces(transcripts_dir: Path) -> None:
    blocks = split_commands(transcript(transcripts_dir, "D01"))
    frame = next(b for b in blocks if b.command.startswith(".frame"))
    assert frame.command == ".frame 0n0;dv /t /v"
    assert frame.commands == (".frame 0n0", "dv /t /v")


def test_t11_three_commands_on_one_prompt_line(transcripts_dir: Path) -> None:
    blocks = split_commands(transcript(transcripts_dir, "T11"))
    assert [b.prompt for b in blocks] == [None, "2: kd>", "2: kd>", "2: kd>"]
    assert blocks[0].output.startswith("************* Preparing the environment for Debugger Extensions Gallery")
    assert "Microsoft (R) Windows Debugger Version 10.0.29617.1000 AMD64" in blocks[0].output
    assert blocks[0].output.endswith("ss:0018:ffffb905`7d8473a0=0000000000000124")
    last = blocks[3]
    assert last.command == ".process /r /p 0xffff9c0d7d8d9140; .thread /r /p 0xffff9c0d84ab2040 ; kb"
    assert last.commands == (".process /r /p 0xffff9c0d7d8d9140", ".thread /r /p 0xffff9c0d84ab2040", "kb")
    assert last.output.splitlines()[0] == "Implicit process is now ffff9c0d`7d8d9140"


def test_t09_glued_prompts(transcripts_dir: Path) -> None:
    blocks = split_commands(transcript(transcripts_dir, "T09"))
    assert [(b.prompt, b.glued, b.command) for b in blocks] == [
        (None, False, ""),
        ("0: kd>", True, ""),
        ("0: kd>", True, ""),
    ]
    assert blocks[0].output.startswith("MANUALLY_INITIATED_CRASH (e2)")
    assert blocks[1].output.splitlines()[0] == "  !DevObj           !DrvObj            !DevExt           ObjectName"
    assert blocks[1].output.splitlines()[1] == "> ffffd60c87b80050  \\Driver\\rtux64w10  ffffd60c87b801a0  NDMP14"
    assert blocks[2].output.splitlines()[0] == "Irp is active with 14 stacks 14 is current (= 0xffffd60c87b4ffb8)"
    assert blocks[1].commands == ()


def test_t10_glued_prompts(transcripts_dir: Path) -> None:
    blocks = split_commands(transcript(transcripts_dir, "T10"))
    firsts = [b.output.splitlines()[0] for b in blocks[1:]]
    assert firsts == [
        "RAID ADAPTER",
        "RAID ADAPTER",
        "Storage class device ffffe60022a37060 with extension at ffffe60022a371b0",
        "  !DevObj           !DrvObj            !DevExt           ObjectName",
        "Irp is active with 12 stacks 11 is current (= 0xffffe600216e9f20)",
    ]
    assert all(b.glued and b.command == "" and b.cpu == 0 for b in blocks[1:])
    # the NDIS fragment has no prompt: it stays in the output of the !storclass block before it
    assert "ALL PENDING OIDs" in blocks[3].output


def test_t08_prompt_changes_cpu(transcripts_dir: Path) -> None:
    blocks = split_commands(transcript(transcripts_dir, "T08"))
    assert [b.cpu for b in blocks] == [1, 1, 1, 1, 1, 1, 1, 0, 0]
    assert [b.command for b in blocks][-2:] == ["!mex.t", "!irql 1"]


def test_d11_trailing_spaces_after_command(transcripts_dir: Path) -> None:
    (block,) = split_commands(transcript(transcripts_dir, "D11"))
    assert block.command == "!thread 0xffffcb088f0a4480"
    assert block.line == "0: kd> !thread 0xffffcb088f0a4480            "


def test_t06_prompt_less_line_stays_in_previous_output(transcripts_dir: Path) -> None:
    blocks = split_commands(transcript(transcripts_dir, "T06"))
    assert len(blocks) == 14
    assert blocks[0].command == ".load mex"
    dps = next(b for b in blocks if b.command == "dps fffff804`789a2060 l1")
    assert dps.output.splitlines() == [
        "fffff804`789a2060  fffff804`6faad110 nt!ExFreePoolWithTag",
        "fffff804`789a1152 ba31427257      mov     edx,57724231h",
    ]


def test_d06_echo_example_is_one_j_command(transcripts_dir: Path) -> None:
    (block,) = split_commands(transcript(transcripts_dir, "D06"))
    assert block.prompt == "0:000>"
    assert block.mode == "user"
    line = "j (poi(MyVar)>5) '.echo MyVar Too Big'; '.echo MyVar Acceptable;"
    assert block.command == line
    # j keeps its "Command1 ; Command2" pair; the unclosed quote runs to the end of the line
    assert block.commands == (line,)


def test_d04_single_user_mode_line(transcripts_dir: Path) -> None:
    (block,) = split_commands(transcript(transcripts_dir, "D04"))
    assert (block.prompt, block.command, block.output) == ("0:000>", ".dump /mfh myfile.dmp", "")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('.echo "a;b"; k', ('.echo "a;b"', "k")),  # quoted .echo may hold ;
        (".echo it's; k", (".echo it's", "k")),  # unquoted .echo ends at ; whatever quotes it holds
        (".echo a;b", (".echo a", "b")),
        ("* comment; k", ("* comment; k",)),  # * comments take the rest of the line
        ("$$ it's {; k", ("$$ it's {", "k")),  # $$ comments end at the first ; whatever they hold
        # the documentation's example: "displays eax and ebx, but not ecx"
        ("r eax; $$ some text; r ebx; * more text; r ecx", ("r eax", "$$ some text", "r ebx", "* more text; r ecx")),
        ('bp nt!KeBugCheckEx "k;g"; bl', ('bp nt!KeBugCheckEx "k;g"', "bl")),
        (".block { r; k }; g", (".block { r; k }", "g")),
        ("!analyze -v; q", ("!analyze -v", "q")),
        ("  lm  ", ("lm",)),
        (";;k", ("k",)),
        ("", ()),
    ],
)
def test_split_command_line(line: str, expected: tuple[str, ...]) -> None:
    assert split_command_line(line) == expected


def test_two_digit_cpu_prompt(transcripts_dir: Path) -> None:
    # No transcript comes from a machine with more than 10 processors (T12 stops at "6: kd>"): take T12's own
    # session and give it the prompt a 32-processor machine prints after `~12s`.
    text = transcript(transcripts_dir, "T12").replace("6: kd> !process", "12: kd> !process")
    blocks = split_commands(text)
    assert [(b.prompt, b.cpu, b.command) for b in blocks[1:]] == [
        ("6: kd>", 6, "!analyze -v"),
        ("12: kd>", 12, "!process"),
    ]
    assert blocks[2].output.splitlines()[0] == "PROCESS ffff85053250f080"


def test_text_without_prompt_is_one_banner_block() -> None:
    (block,) = split_commands("Loading Dump File [x.dmp]\nsomething")
    assert block.prompt is None
    assert block.cpu is None
    assert block.output == "Loading Dump File [x.dmp]\nsomething"
    assert split_commands("") == []


def test_parse_log_t11_end_to_end(transcripts_dir: Path) -> None:
    log = parse_log(transcript(transcripts_dir, "T11"))
    assert log.banner is not None
    assert log.banner.debugger_version == "10.0.29617.1000"
    assert log.analyze is not None
    assert log.analyze.bugcheck_name == "WHEA_UNCORRECTABLE_ERROR"
    assert log.bugcheck is not None
    assert log.bugcheck.code == 0x124
    assert log.bugcheck.parameters == (0x10, 0xFFFF9C0D98CC1028, 0xFFFF9C0D7F97192C, 0xFFFF9C0D7F9971A0)
    # the stack comes from the kb after `.process; .thread` (no Child-SP column), 15 frames 00..0e
    assert [f.index for f in log.stack] == list(range(15))
    assert log.stack[0].child_sp is None
    assert log.stack[-1].call_site == "nt!KiStartSystemThread+0x28"
    assert log.warnings == ()


def test_parse_log_t09_analyze_without_prompt(transcripts_dir: Path) -> None:
    log = parse_log(transcript(transcripts_dir, "T09"))
    assert log.banner is None  # the text before the first prompt is an !analyze fragment, not a banner
    assert log.analyze is not None
    assert (log.analyze.bugcheck_name, log.analyze.bugcheck_code) == ("MANUALLY_INITIATED_CRASH", 0xE2)
    assert log.analyze.symbol_name == "i8042prt!I8xProcessCrashDump+24f"
    assert log.bugcheck is not None
    assert log.bugcheck.parameters == (0, 0, 0, 0)
    assert len(log.stack) == 14
    assert log.stack[1].call_site == "i8042prt!I8xProcessCrashDump+0x24f"


def test_parse_log_prefers_verbose_analyze(transcripts_dir: Path) -> None:
    log = parse_log(transcript(transcripts_dir, "T08"))  # !analyze -v, then !analyze -show
    assert log.analyze is not None
    assert log.analyze.symbol_name == "TestDriver!AccessPageableMemory+0"
    assert log.vertarget is not None
    assert log.vertarget.processors == 6


def test_parse_log_d03_picks_kernel_analyze(transcripts_dir: Path) -> None:
    log = parse_log(transcript(transcripts_dir, "D03"))
    assert log.analyze is not None
    assert log.analyze.bugcheck_code == 0xD1
    assert log.analyze.image_name == "USBPORT.SYS"


def test_parse_log_d05_modules_deduplicated(transcripts_dir: Path) -> None:
    log = parse_log(transcript(transcripts_dir, "D05"))
    # lm m s*: 6 loaded + 3 unloaded; lm: 6 user-mode modules; lm sm lists the same 6 again
    assert len(log.modules) == 15
    assert sum(m.unloaded for m in log.modules) == 3


@pytest.mark.parametrize("stem", ["T01", "T03", "T04", "T06", "T07", "T08", "T09", "T10", "T11", "T12", "D01", "D03"])
def test_parse_log_json_ready(transcripts_dir: Path, stem: str) -> None:
    data = json.loads(json.dumps(parse_log(transcript(transcripts_dir, stem)).to_dict()))
    assert data["commands"]
    assert set(data) == {
        "banner",
        "commands",
        "analyze",
        "bugcheck",
        "vertarget",
        "modules",
        "stack",
        "warnings",
        "exception",
        "cpu",
    }


def test_every_transcript_is_covered(transcripts_dir: Path) -> None:
    """A new transcript must get tests: the stems below are the ones these test files read."""
    stems = {p.name.split("_", 1)[0] for p in transcripts_dir.glob("*.log")}
    assert stems == {"D01", "D03", "D04", "D05", "D06", "D11", "T01", "T03", "T04", "T06", "T07", "T08", "T09"} | {
        "T10",
        "T11",
        "T12",
    }


def test_local_kernel_and_effective_machine_prompts() -> None:
    blocks = split_commands(
        "lkd> vertarget\nWindows 10 Kernel Version 19041 MP (8 procs) Free x64\n0:000:x86> k\n0: kd:x86> r"
    )
    assert [(b.prompt, b.cpu, b.command, b.mode) for b in blocks] == [
        ("lkd>", None, "vertarget", "kernel"),
        ("0:000:x86>", None, "k", "user"),
        ("0: kd:x86>", 0, "r", "kernel"),
    ]


def test_capitalised_command_is_not_glued_output() -> None:
    blocks = split_commands("0: kd> LM\nstart    end        module name\n0: kd> Vertarget\n0: kd> RAID ADAPTER\nx")
    assert [(b.command, b.glued) for b in blocks] == [("LM", False), ("Vertarget", False), ("", True)]
