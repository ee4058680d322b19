"""Which module probably caused the crash, by a rule written down here, and which drivers look third-party.

The rule (first match wins; the chosen rule's name is stored in ``CulpritFact.rule``):

1. ``bugcheck-parameter-N`` — a bug check parameter that the reference documents as a *code address*
   (P2 of 0x1E/0x3B/0x7E/0x8E and their ``_M`` variants, P4 of 0x0A/0xC5/0xD0/0xD1, P3 of 0x50/0xCE/0xD5/0xD6,
   P1 of 0xFC, P2 of 0x116) lies inside a loaded module that is not a Microsoft core module.
2. ``pc`` — the saved program counter lies inside such a module.
3. ``stack-scan`` — the first code address on the stack (innermost first) inside such a module.
4. ``pc-core`` / ``bugcheck-parameter-N-core`` — the module holding the PC (else the parameter), even if it is
   a core module; ``is_core`` is set so readers know it is weak evidence.

Core modules are the kernel, the HAL and the kernel-debugger transports (``_CORE_NAMES``: ntoskrnl.exe,
ntkrnlmp.exe, ..., hal*.dll, kdcom.dll, kdnet.dll, kd_XX_XXXX.dll; debugger names nt, hal, kdcom), which
appear on every stack and in every crash. Nothing is chosen "blindly": with no address inside any module the
answer is ``None``.

Third-party heuristic (``DriverFact.third_party``): a driver is *not* third-party when its file name is on the
list below of drivers that ship with Windows 10/11 (``dump_`` prefixes of crash-dump filter copies removed)
and it was loaded from the Windows folder (``\\SystemRoot\\`` or ``\\??\\C:\\Windows\\``). Everything else is
reported as third-party. Without the PE version resource (not in a small dump) the vendor cannot be known:
a vendor driver that reuses an inbox file name is misclassified, and inbox drivers missing from the list are
reported as third-party. The flag is a hint for readers, never used by the rule above.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Final

from dbgauto.analysis.facts import CulpritFact, DriverFact
from dbgauto.vocab.bugchecks import base_code

__all__ = [
    "CODE_ADDRESS_PARAMETER",
    "MICROSOFT_DRIVER_NAMES",
    "MICROSOFT_DRIVER_STEMS",
    "find_culprit",
    "is_core_module",
    "looks_third_party",
    "module_basename",
]

# bug check base code → 1-based index of the parameter the reference documents as a code address
CODE_ADDRESS_PARAMETER: Final[dict[int, int]] = {
    0x0A: 4,
    0x1E: 2,
    0x3B: 2,
    0x50: 3,
    0x7E: 2,
    0x8E: 2,
    0xC5: 4,
    0xCE: 3,
    0xD0: 4,
    0xD1: 4,
    0xD5: 3,
    0xD6: 3,
    0xFC: 1,
    0x116: 2,
}

_KD_EXTENSIBILITY: Final = re.compile(r"^kd_[0-9a-f]{2}_[0-9a-f]{4}\.dll$", re.I)  # kdnet NIC modules

# Drivers that ship with Windows 10/11 (lower-case file names). Not exhaustive; see the module docstring.


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# the kernel, the HAL and the kernel-debugger transports, by file name and by the debugger's module name
_CORE_NAMES: Final = _words(
    """
    ntoskrnl.exe ntkrnlmp.exe ntkrnlpa.exe ntkrpamp.exe ntkrla57.exe hal.dll halacpi.dll halaacpi.dll halmacpi.dll
    halapic.dll halmps.dll halsp.dll kd.dll kdcom.dll kdnet.dll kdstub.dll kd1394.dll kdusb.dll
    nt hal kd kdcom kdnet kdstub
    """
)


MICROSOFT_DRIVER_NAMES: Final = _words(
    """
    ntoskrnl.exe ntkrnlmp.exe ntkrnlpa.exe ntkrpamp.exe hal.dll kd.dll kdcom.dll kdnet.dll kdstub.dll pshed.dll
    bootvid.dll ci.dll clfs.sys tm.sys fltmgr.sys msrpc.sys ksecdd.sys clipsp.sys cmimcext.sys werkernel.sys
    ntosext.sys cng.sys wdf01000.sys wdfldr.sys wpprecorder.sys sleepstudyhelper.sys acpiex.sys mssecflt.sys
    sgrmagent.sys lxss.sys lxcore.sys acpi.sys wmilib.sys intelpep.sys windowstrustedrt.sys
    windowstrustedrtproxy.sys pcw.sys msisadrv.sys pci.sys vdrvroot.sys pdc.sys cea.sys partmgr.sys
    spaceport.sys volmgr.sys volmgrx.sys mountmgr.sys storahci.sys storport.sys stornvme.sys ehstorclass.sys
    fileinfo.sys wof.sys wdfilter.sys ntfs.sys fs_rec.sys ndis.sys netio.sys ksecpkg.sys tcpip.sys fwpkclnt.sys
    wfplwfs.sys vmsproxy.sys vmbkmclr.sys vmsproxyhnic.sys fvevol.sys volume.sys volsnap.sys rdyboost.sys mup.sys
    iorate.sys disk.sys classpnp.sys crashdmp.sys dumpstorport.sys dumpfve.sys cdrom.sys filecrypt.sys tbs.sys
    null.sys beep.sys dxgkrnl.sys dxgmms1.sys dxgmms2.sys watchdog.sys basicdisplay.sys basicrender.sys npfs.sys
    msfs.sys cimfs.sys tdx.sys tdi.sys ws2ifsl.sys netbt.sys afunix.sys afd.sys vwififlt.sys vfpext.sys pacer.sys
    ndiscap.sys netbios.sys vid.sys winhvr.sys winhv.sys rdbss.sys csc.sys nsiproxy.sys npsvctrig.sys
    mssmbios.sys gpuenergydrv.sys dfsc.sys fastfat.sys bam.sys ahcache.sys vmbusr.sys vmbus.sys hvsocket.sys
    compositebus.sys kdnic.sys umbus.sys usbxhci.sys ucx01000.sys hdaudbus.sys portcls.sys drmk.sys ks.sys
    ucmcx.sys serial.sys serenum.sys msgpioclx.sys wmiacpi.sys amdppm.sys intelppm.sys processr.sys uefi.sys
    vpcivsp.sys storvsp.sys ndisvirtualbus.sys swenum.sys rdpbus.sys mouclass.sys kbdclass.sys i8042prt.sys
    kbdhid.sys mouhid.sys hidclass.sys hidparse.sys hidusb.sys usbhub3.sys usbccgp.sys usbport.sys usbehci.sys
    usbuhci.sys usbohci.sys usbhub.sys usbstor.sys uaspstor.sys wudfrd.sys wudfpf.sys http.sys srv2.sys srvnet.sys
    mrxsmb.sys mrxsmb20.sys mrxdav.sys luafv.sys wcifs.sys bindflt.sys storqosflt.sys fvevol.sys refs.sys
    exfat.sys udfs.sys cdfs.sys msiscsi.sys iscsiprt.sys mpio.sys msdsm.sys vhdmp.sys scsiport.sys ataport.sys
    pciide.sys pciidex.sys atapi.sys intelide.sys storufs.sys sdbus.sys sdstor.sys netadaptercx.sys
    netvsc.sys rndismp.sys ndisuio.sys nwifi.sys wfplwf.sys lltdio.sys rspndr.sys mslldp.sys raspppoe.sys
    rasl2tp.sys raspptp.sys rassstp.sys ndiswan.sys ndproxy.sys asyncmac.sys wanarp.sys tcpip6.sys tunnel.sys
    bowser.sys mpsdrv.sys peauth.sys condrv.sys monitor.sys hwpolicy.sys dam.sys wdboot.sys mcupdate.dll
    mcupdate_genuineintel.dll mcupdate_authenticamd.dll msquic.sys winquic.sys tpm.sys acpitime.sys
    cmbatt.sys battc.sys wmbclass.sys bthport.sys bthusb.sys bthenum.sys rfcomm.sys hidbth.sys bthmini.sys
    intelpmax.sys spaceparser.sys sgrmagent.sys fileinfo.sys wtd.sys wof.sys ksthunk.sys usbvideo.sys
    hdaudio.sys usbaudio.sys audiosrv.sys vmgencounter.sys hyperkbd.sys hypervideo.sys storflt.sys
    """
)
# the same names without their extension: ``lm`` lists modules by stem (``nt``, ``acpi``, ``myfault``)
MICROSOFT_DRIVER_STEMS: Final = frozenset(name.rsplit(".", 1)[0] for name in MICROSOFT_DRIVER_NAMES)


def module_basename(name: str) -> str:
    """The file name of an NT path (``\\SystemRoot\\System32\\drivers\\x.sys`` → ``x.sys``)."""
    return name.rsplit("\\", 1)[-1] if name else name


def is_core_module(name: str) -> bool:
    """True for the kernel, HAL and kernel-debugger modules (never a useful culprit)."""
    base = module_basename(name).lower()
    return base in _CORE_NAMES or bool(_KD_EXTENSIBILITY.match(base))


_WINDOWS_DIR: Final = re.compile(r"^(\\systemroot\\|\\\?\?\\[a-z]:\\windows\\|[a-z]:\\windows\\|\\windows\\)", re.I)


def looks_third_party(path: str) -> bool:
    """The documented heuristic (see the module docstring): not an inbox file name under the Windows folder."""
    base = module_basename(path).lower()
    if base.startswith("dump_"):
        base = base[5:]
    in_windows = ("\\" not in path and "/" not in path) or bool(_WINDOWS_DIR.match(path))
    return not (in_windows and base in MICROSOFT_DRIVER_NAMES)


def _module_at(drivers: Sequence[DriverFact], address: int) -> DriverFact | None:
    for drv in drivers:
        if drv.contains(address):
            return drv
    return None


def _fact(drv: DriverFact, address: int, rule: str) -> CulpritFact:
    base = drv.base if drv.base is not None else 0
    return CulpritFact(
        name=module_basename(drv.name),
        base=drv.base,
        offset=address - base,
        timestamp=drv.timestamp,
        rule=rule,
        address=address,
        is_core=is_core_module(drv.name),
    )


def find_culprit(
    *,
    pc: int | None,
    bugcheck_code: int | None,
    bugcheck_parameters: Sequence[int],
    drivers: Sequence[DriverFact],
    stack_values: Sequence[int],
) -> CulpritFact | None:
    """Apply the documented rule (module docstring); ``None`` when no address falls inside any module."""
    candidates: list[tuple[int, str]] = []
    if bugcheck_code is not None:
        index = CODE_ADDRESS_PARAMETER.get(base_code(bugcheck_code))
        if index is not None and index <= len(bugcheck_parameters) and bugcheck_parameters[index - 1]:
            candidates.append((bugcheck_parameters[index - 1], f"bugcheck-parameter-{index}"))
    if pc is not None:
        candidates.append((pc, "pc"))

    for address, rule in candidates:
        drv = _module_at(drivers, address)
        if drv is not None and not is_core_module(drv.name):
            return _fact(drv, address, rule)
    for address in _stack_code_addresses(stack_values):
        drv = _module_at(drivers, address)
        if drv is not None and not is_core_module(drv.name):
            return _fact(drv, address, "stack-scan")
    for address, rule in sorted(candidates, key=lambda c: c[1] != "pc"):
        drv = _module_at(drivers, address)
        if drv is not None:
            return _fact(drv, address, f"{rule}-core")
    return None


def _stack_code_addresses(values: Iterable[int]) -> Iterable[int]:
    return (v for v in values if v)
