"""Build-specific kernel structure offsets the small-dump reader needs (process name, pid, thread id).

These offsets are not in KDDEBUGGER_DATA64, so they come from a table keyed by machine and build range. Each row
also records the EPROCESS / ETHREAD sizes of that build; the reader only trusts a row when the dump's own
KDBG.SizeEProcess / SizeEThread agree, and then cross-validates the values (ETHREAD.Cid.UniqueProcess must equal
EPROCESS.UniqueProcessId, the name must be printable ASCII). Anything else is "unknown" (None), never a guess.

Sources (facts only):
* x64 19041: the Windows-written sample ``../shared/dumps/triage_x64.dmp`` (ImageFileName +0x5A8 = "System",
  UniqueProcessId +0x440 = 4, ETHREAD.Cid +0x478 = (4, 264); ``../shared/spec/observed-triage-x64.md``).
* ETHREAD size 0x898 for x64 2004: Geoff Chappell, "ETHREAD" (geoffchappell.com studies/windows/km/ntoskrnl/inc/
  ntos/ps/ethread). Builds 19042-19045 are servicing releases of the same 2004 kernel (several public offset
  tables in driver/tooling code give the same EPROCESS UniqueProcessId 0x440 / ImageFileName 0x5A8 for
  19041-19045); the size guard rejects the row if a build differs.
* Not in the table (so "unknown"): other builds, x86 and ARM64. Public tables disagree or lack ETHREAD.Cid for
  them, and nothing here can check them against a real dump.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from dbgauto.kdump.constants import Machine


@dataclass(frozen=True, slots=True)
class NtOffsets:
    """Where a build keeps the fields the reader shows; sizes guard against a wrong row."""

    machine: int
    first_build: int
    last_build: int
    size_eprocess: int
    size_ethread: int
    eprocess_unique_process_id: int
    eprocess_image_file_name: int  # UCHAR[15]
    ethread_cid: int  # CLIENT_ID {UniqueProcess, UniqueThread}, pointer-sized each
    source: str


NT_OFFSETS: Final[tuple[NtOffsets, ...]] = (
    NtOffsets(
        machine=Machine.AMD64,
        first_build=19041,
        last_build=19045,
        size_eprocess=0xA40,
        size_ethread=0x898,
        eprocess_unique_process_id=0x440,
        eprocess_image_file_name=0x5A8,
        ethread_cid=0x478,
        source="triage_x64.dmp (Windows 10 2004, build 19041); ETHREAD size per Geoff Chappell",
    ),
)

IMAGE_FILE_NAME_LENGTH: Final = 15


def offsets_for(
    machine: int, build: int | None, size_eprocess: int | None, size_ethread: int | None
) -> NtOffsets | None:
    """The table row for this machine and build whose structure sizes match the dump's KDBG; else None."""
    if build is None:
        return None
    for row in NT_OFFSETS:
        if row.machine != machine or not (row.first_build <= build <= row.last_build):
            continue
        if size_eprocess is not None and size_eprocess != row.size_eprocess:
            continue
        if size_ethread is not None and size_ethread != row.size_ethread:
            continue
        return row
    return None
