"""The inbox-module list against the shared material: every Microsoft kernel module the transcripts and the
real small dump show is inbox; the drivers the transcripts show as someone else's, and hand-made vendor
names, are not.

Expectations come from reading the transcripts, not from the list: a kernel-mode module in an ``lm``
listing or a kernel stack is Microsoft's unless the transcript itself shows it is not (the cases below,
each with the evidence line's gist).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dbgauto.vocab.inbox import is_inbox, module_file_name

# Modules the transcripts show are not Microsoft's (evidence in the transcript named)
NOT_MICROSOFT = {
    "tabletaudiosample": "D01: lm '(private pdb symbols)', the lab's sample driver",
    "driver": "T06/T07: Image path \\??\\C:\\Users\\User\\source\\repos\\Driver\\x64\\Release\\Driver.sys",
    "testdriver": "T08: MODULE_NAME TestDriver with private source lines C:\\...\\Driver.c",
    "mydriver": "T03/T04: 'Probably caused by : MyDriver.sys', the blogger's own driver",
    "myfault": "T01: NotMyFault's myfault.sys (Sysinternals tool, not part of Windows)",
    "psseckbd": "T03: the anonymised name of the blogger's driver",
    "mfehidk": "T04: frames 'mfehidk+0x9128' with no symbols from Microsoft's server (McAfee's HIPS driver)",
}
# user-mode modules (lm of a user-mode session, user stacks) are not kernel modules
USER_MODE = {"advapi32", "rpcrt4", "kernel32", "msvcrt", "ntdll", "stst", "kernelbase", "user32", "myapp", "cmd"}

_KADDR = r"(?:f[0-9a-f]{7}|[89a-e][0-9a-f]{7}|ffff[0-9a-f]{4}`[0-9a-f]{8})"
_LM_ROW = re.compile(rf"^({_KADDR}) ({_KADDR}) +([A-Za-z_][\w.]*)(?:\s+(.*))?$")
_FRAME_MOD = re.compile(r"(?:^|\s)([A-Za-z_][\w.]*)(?:!\w|\+0x)")


def _transcripts(shared: Path) -> list[Path]:
    files = sorted((shared / "transcripts").glob("*.log"))
    if not files:
        pytest.skip("no transcripts in ../shared")
    return files


def _to_int(a: str) -> int:
    return int(a.replace("`", ""), 16)


def transcript_kernel_modules(shared: Path) -> dict[str, str]:
    """Kernel-mode module name → 'file:line' where it appears (lm rows with kernel addresses; frames of
    kernel stacks: lines whose first column is a kernel address)."""
    found: dict[str, str] = {}
    for f in _transcripts(shared):
        for n, line in enumerate(f.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            m = _LM_ROW.match(line)
            if (
                m
                and _to_int(m.group(2)) > _to_int(m.group(1))
                and len(m.group(1)) == len(m.group(2))
                and not re.fullmatch(r"[0-9a-f]+", m.group(3))
            ):
                found.setdefault(m.group(3), f"{f.name}:{n}")
                continue
            first = line.split(" ", 1)[0]
            if re.fullmatch(_KADDR, first):
                for mm in _FRAME_MOD.finditer(line):
                    found.setdefault(mm.group(1), f"{f.name}:{n}")
    return found


def test_transcript_modules(shared_dir: Path) -> None:
    mods = transcript_kernel_modules(shared_dir)
    assert len(mods) >= 30, mods  # the lm listings of D01/D05 and the kernel stacks of the other sessions
    wrong = []
    for name, where in sorted(mods.items()):
        key = name.lower().removesuffix(".sys")
        if key in USER_MODE or key.startswith(("av_", "mov", "lea")):
            continue
        expected = key not in NOT_MICROSOFT
        if is_inbox(name) != expected:
            wrong.append((name, where, expected))
    assert wrong == []


def test_real_dump_drivers(triage_x64_path: Path, shared_dir: Path) -> None:
    from dbgauto.kdump.reader import KernelDump

    drivers = [d.name for d in KernelDump.open(triage_x64_path).triage.drivers]
    assert len(drivers) == 151
    seen_microsoft = {n.lower() for n in transcript_kernel_modules(shared_dir)} - set(NOT_MICROSOFT)
    in_both = [d for d in drivers if module_file_name(d).lower().rsplit(".", 1)[0] in seen_microsoft]
    assert len(in_both) >= 10
    assert [d for d in in_both if not is_inbox(d)] == []


@pytest.mark.parametrize(
    "name",
    [
        "contoso_widget.sys",
        "\\SystemRoot\\System32\\drivers\\contosoflt.sys",
        "\\??\\C:\\Users\\dev\\Release\\ntfs.sys",  # an inbox name outside the Windows directory
        "D:\\drivers\\tcpip.sys",
        "myfault.sys",
        "",
        "   ",
    ],
)
def test_third_party(name: str) -> None:
    assert not is_inbox(name)


@pytest.mark.parametrize(
    "name",
    [
        "nt",
        "hal",
        "\\SystemRoot\\system32\\ntoskrnl.exe",
        "\\SystemRoot\\System32\\Drivers\\dump_stornvme.sys",
        "\\SystemRoot\\System32\\DriverStore\\FileRepository\\basicdisplay.inf_amd64_62ba5773ba05edee\\BasicDisplay.sys",
        "C:\\Windows\\System32\\drivers\\Wdf01000.sys",
        "mcupdate_GenuineIntel",
        "kd_02_8086.dll",
        "win32kfull",
        "USBD.SYS",
        "SpbCx.sys",
        "cldflt.sys",
        "mrxsmb10.sys",
        "tcpipreg.sys",
        "Ndu.sys",
        "mmcss.sys",
    ],
)
def test_inbox_examples_from_the_issue_and_paths(name: str) -> None:
    assert is_inbox(name)
