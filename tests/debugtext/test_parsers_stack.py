"""parse_stack on every stack table in the transcripts; expected values were read from the .log files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dbgauto.debugtext import parse_stack, split_call_site, split_commands

_META_RE = re.compile(r"^# (?:source|kind|extracted|note):|^# ---$")


def transcript(transcripts_dir: Path, stem: str) -> str:
    path = next(transcripts_dir.glob(f"{stem}_*.log"))
    return "\n".join(line for line in path.read_text(encoding="utf-8").splitlines() if not _META_RE.match(line))


def output_of(transcripts_dir: Path, stem: str, command: str, nth: int = 0) -> str:
    return [b.output for b in split_commands(transcript(transcripts_dir, stem)) if b.command == command][nth]


def table(frames) -> list[tuple]:  # type: ignore[no-untyped-def]
    return [(f.child_sp, f.return_address, f.call_site) for f in frames]


def test_t01_kv(transcripts_dir: Path) -> None:
    frames = parse_stack(output_of(transcripts_dir, "T01", "kv"))
    assert [f.index for f in frames] == list(range(9))
    f0 = frames[0]
    assert (f0.child_sp, f0.return_address) == (0xFFFFD48F77AF9970, 0xFFFFF80060DA1D3D)
    assert f0.args == (0xC85C00F0, 0x1E35FB24550, 0xF0, 0)
    assert (f0.call_site, f0.module, f0.function, f0.offset) == ("myfault+0x1981", "myfault", None, 0x1981)
    f3 = frames[3]
    assert (f3.module, f3.function, f3.offset) == ("nt", "IofCallDriver", 0x55)
    f7 = frames[7]
    assert f7.call_site == "nt!KiSystemServiceCopyEnd+0x25"
    assert f7.trap_frame == 0xFFFFD48F77AF9E40  # "(TrapFrame @ ffffd48f`77af9e40)"
    f8 = frames[8]
    assert (f8.call_site, f8.address, f8.module) == ("0x00007ff8`f16ece54", 0x7FF8F16ECE54, None)
    assert (f8.child_sp, f8.return_address) == (0x7AE6BDE8D8, 0)


def test_t01_process_stack_frame_without_child_sp(transcripts_dir: Path) -> None:
    frames = parse_stack(output_of(transcripts_dir, "T01", "!process ffff9189527e9080 7"))
    assert len(frames) == 10  # the wait-object lines (ffff918953118260  SynchronizationEvent) are not frames
    assert frames[0].call_site == "nt!KiSwapContext+0x76"
    damaged = frames[7]  # "fffff800`62a08bb5     win32k!NtUserMsgWaitForMultipleObjectsEx+0x20"
    assert damaged.child_sp is None
    assert damaged.return_address == 0xFFFFF80062A08BB5
    assert damaged.call_site == "win32k!NtUserMsgWaitForMultipleObjectsEx+0x20"
    assert frames[8].trap_frame == 0xFFFFD48F777BFE40
    assert frames[9].call_site == "0x00007ff8`eed7a104"


def test_t03_x86_symbols_on_separate_lines(transcripts_dir: Path) -> None:
    blocks = split_commands(transcript(transcripts_dir, "T03"))
    frames = parse_stack(blocks[1].output)
    assert table(frames) == [
        (0xBAD17BC0, 0x804FA83F, "nt!KeBugCheck+0x14"),
        (0xBAD17BFC, 0xBAC9199E, "nt!KeWaitForMultipleObjects+0x37"),
        (0xBAD17C50, 0xBAC914D7, "mydriver+0x199e"),  # symbol two lines below its numbers
        (0xBAD17C7C, 0xBAC94058, "mydriver+0x14d7"),
        (0xBAD17C84, 0x8058006A, "mydriver+0x4058"),
        (0xBAD17D54, 0x80580179, "nt!IopLoadDriver+0x66c"),  # ditto
        (0xBAD17D7C, 0x80537757, "nt!IopLoadUnloadDriver+0x45"),
        (0xBAD17DAC, 0x805CE794, "nt!ExpWorkerThread+0xef"),
        (0xBAD17DDC, 0x805450CE, "nt!PspSystemThreadStartup+0x34"),
        (0, 0, "nt!KiThreadStartup+0x16"),
    ]
    assert frames[0].args == (0xC, 0x4, 0x883A8EAC)  # x86: three Args to Child
    assert frames[2].args == (0x88D851E8, 0, 0x883A8030)
    assert all(f.index is None for f in frames)


def test_t04_elision_lines_skipped(transcripts_dir: Path) -> None:
    frames = parse_stack(split_commands(transcript(transcripts_dir, "T04"))[1].output)
    assert len(frames) == 8
    assert (frames[4].child_sp, frames[4].module, frames[4].offset) == (0xA7F4B940, "mfehidk", 0x9128)
    assert frames[6].call_site == "cmd!ExecPgm+0x22b"


def test_t06_mex_hex_frame_numbers_match_crash_table(transcripts_dir: Path) -> None:
    mex = parse_stack(output_of(transcripts_dir, "T06", "!mex.t"))
    crash = parse_stack(output_of(transcripts_dir, "T06", "!crash"))
    assert [f.index for f in mex] == list(range(13))  # 0..9, a, b, c
    assert [f.index for f in crash] == list(range(13))  # 00..0c
    assert table(mex) == table(crash)  # no backticks in MEX, backticks in the k-style table: same numbers
    assert table(mex)[12] == (0xFFFFFA86B7EAF5C0, 0, "nt!KiStartSystemThread+0x34")
    assert (mex[3].module, mex[3].offset) == ("Driver", 0x1170)


def test_t07_mex_right_aligned_numbers_match_knl(transcripts_dir: Path) -> None:
    mex = parse_stack(output_of(transcripts_dir, "T07", "!t"))
    knl = parse_stack(output_of(transcripts_dir, "T07", "knL"))
    assert [f.index for f in mex] == list(range(18))  # " 0".." f", "10", "11"
    assert table(mex) == table(knl)
    assert knl[4].call_site == "nt!RtlRbRemoveNode+0x249f73"
    assert knl[4].args == ()


def test_t07_frame_command(transcripts_dir: Path) -> None:
    (frame,) = parse_stack(output_of(transcripts_dir, "T07", ".frame /r 0n4"))
    assert (frame.index, frame.child_sp, frame.call_site) == (4, 0xFFFFB88F1487EDC0, "nt!RtlRbRemoveNode+0x249f73")


def test_t08_mex_source_column(transcripts_dir: Path) -> None:
    frames = parse_stack(output_of(transcripts_dir, "T08", "!mex.t"))
    assert len(frames) == 7
    assert frames[0].call_site == "nt!KeBugCheckEx"  # trailing spaces of the empty Source column dropped
    assert frames[0].source is None
    assert frames[3].call_site == "TestDriver!AccessPageableMemory"
    assert frames[3].source == r"C:\Users\User\source\repos\TestDriver\TestDriver\Driver.c @ 11"
    assert frames[4].source_line == 29
    assert frames[4].offset == 0x15


def test_t11_kb_without_child_sp(transcripts_dir: Path) -> None:
    text = transcript(transcripts_dir, "T11")
    block = next(b for b in split_commands(text) if b.commands[-1:] == ("kb",))
    frames = parse_stack(block.output)
    assert [f.index for f in frames] == list(range(15))
    assert all(f.child_sp is None for f in frames)
    assert frames[0].return_address == 0xFFFFF805057BB53F
    assert frames[0].args == (0x124, 0x10, 0xFFFF9C0D98CC1028, 0xFFFF9C0D7F97192C)
    assert frames[14].call_site == "nt!KiStartSystemThread+0x28"
    # same frames as !analyze's STACK_TEXT in the same log (which has the Child-SP column)
    analyze = next(b for b in split_commands(text) if b.command == "!analyze -v")
    stack_text = parse_stack(analyze.output.split("STACK_TEXT:", 1)[1].split("MODULE_NAME:", 1)[0])
    assert [(f.return_address, f.args, f.call_site) for f in stack_text] == [
        (f.return_address, f.args, f.call_site) for f in frames
    ]


def test_d01_k_kb_and_thread(transcripts_dir: Path) -> None:
    k = parse_stack(output_of(transcripts_dir, "D01", "k"))
    assert len(k) == 18
    assert k[0].function == "CMiniportWaveRT::NewStream"
    assert k[0].offset is None
    assert k[0].source == r"c:\data1\threshold\audio\endpointscommon\minwavert.cpp @ 562"
    assert (k[17].index, k[17].call_site, k[17].address) == (0x11, "0x12e", 0x12E)
    kb = parse_stack(output_of(transcripts_dir, "D01", "kb"))
    assert len(kb) == 18
    assert kb[0].child_sp is None
    assert kb[0].offset == 0x1DC
    assert kb[0].source_line == 597
    thread = parse_stack(output_of(transcripts_dir, "D01", "!thread", nth=0))
    assert [(f.return_address, f.call_site) for f in thread] == [(f.return_address, f.call_site) for f in k]
    frame0 = parse_stack(output_of(transcripts_dir, "D01", ".frame 0n0;dv /t /v"))
    assert len(frame0) == 1  # the dv lines that follow are not frames
    assert frame0[0].child_sp == 0xFFFFD001C30981D0


def test_d11_source_with_trailing_space(transcripts_dir: Path) -> None:
    frames = parse_stack(split_commands(transcript(transcripts_dir, "D11"))[0].output)
    assert len(frames) == 3
    assert frames[0].source == r"d:\rs2\minkernel\ntos\rtl\amd64\debugstb.asm @ 130"
    assert frames[0].call_site == "nt!DbgBreakPointWithStatus"
    assert frames[2].address == 0xFFFFCB088FD68010


def test_unrelated_output_has_no_frames(transcripts_dir: Path) -> None:
    assert parse_stack(output_of(transcripts_dir, "T06", "dc ffffbd06d46e0000-100 l0x240/4")) == []
    assert parse_stack(output_of(transcripts_dir, "T10", "", nth=1)) == []  # !storadapter
    assert parse_stack(output_of(transcripts_dir, "D01", "dd ffffd001`c8acd348")) == []
    assert parse_stack("") == []


@pytest.mark.parametrize(
    ("site", "expected"),
    [
        ("nt!KiPageFault+0x469", ("nt", "KiPageFault", 0x469, None)),
        ("myfault+0x1981", ("myfault", None, 0x1981, None)),
        ("mydriver+199e", ("mydriver", None, 0x199E, None)),  # SYMBOL_NAME style, hex without 0x
        ("nt!KeBugCheckEx", ("nt", "KeBugCheckEx", None, None)),
        ("ksthunk!CKernelFilterDevice::DispatchIrp+0xf9", ("ksthunk", "CKernelFilterDevice::DispatchIrp", 0xF9, None)),
        ("0x00007ff8`f16ece54", (None, None, None, 0x7FF8F16ECE54)),
        ("TestDriver!AccessPageableMemory+0", ("TestDriver", "AccessPageableMemory", 0, None)),
        ("not a symbol", (None, None, None, None)),
    ],
)
def test_split_call_site(site: str, expected: tuple) -> None:  # type: ignore[type-arg]
    assert split_call_site(site) == expected


def test_inline_frames() -> None:
    # No transcript holds an inline frame; these rows follow the layout the debugger prints for them (the `kn`
    # sample of Microsoft's KMDF echo walkthrough and `kv` with "(Inline Function @ ...)"), with our own values.
    kn = "\n".join(
        [
            " # Child-SP          RetAddr           Call Site",
            "00 ffffd001`51978110 fffff801`0942f55b Drv!AddDevice+0x66 [c:\\src\\driver.c @ 138]",
            "01 (Inline Function) --------`-------- Wdf01000!FxDriverDeviceAdd::Invoke+0x30 [d:\\fx\\cb.hpp @ 61]",
            "02 ffffd001`51978150 fffff801`eed8097d Wdf01000!FxDriver::AddDevice+0xab",
        ]
    )
    frames = parse_stack(kn)
    assert [f.index for f in frames] == [0, 1, 2]
    inline = frames[1]
    assert inline.inline is True
    assert (inline.child_sp, inline.return_address, inline.args) == (None, None, ())
    assert (inline.module, inline.function, inline.offset) == ("Wdf01000", "FxDriverDeviceAdd::Invoke", 0x30)
    assert inline.source_line == 61
    assert frames[0].inline is False
    kv = (
        "(Inline Function) --------`--------     : --------`-------- --------`-------- --------`-------- "
        "--------`-------- : dxgkrnl!VidMmSuspend+0x20 (Inline Function @ fffff802`66648c94) [x\\mm.hxx @ 1600]"
    )
    (frame,) = parse_stack("Child-SP          RetAddr               : Args to Child : Call Site\n" + kv)
    assert frame.inline is True
    assert frame.call_site == "dxgkrnl!VidMmSuspend+0x20"
    assert frame.source == "x\\mm.hxx @ 1600"
    assert frame.args == ()


def test_function_names_with_spaces() -> None:
    line = "06 0000001c`ffdfeb08 00007ff6`273dea2a     d8!Gen<unsigned long long,long long>::Call+0x12 [s.h @ 212] "
    (frame,) = parse_stack(line)
    assert frame.function == "Gen<unsigned long long,long long>::Call"
    assert frame.offset == 0x12
    assert frame.source_line == 212
