"""The probable culprit, reasoned as ``!analyze`` reasons: one attribution table, then a fallback chain.

The table (:data:`ATTRIBUTION`) is the one place that says, per bug check, what points at the culprit and why
(the evidence column restates Microsoft's bug check code reference, CC BY 4.0):

============================  ============================================  ==========================================
rule                          bug checks (base codes)                       evidence
============================  ============================================  ==========================================
``faulting-instruction``      0x0A, 0xD1, 0xC5, 0xD0, 0xD3 (P4);            the parameter is the address of the
                              0x50, 0xCE, 0xD5, 0xD6 (P3)                   instruction that referenced the memory
``exception-address``         0x1E, 0x7E, 0x8E, 0x3B (P2)                   the parameter is the exception address
``execute-target``            0xFC (P1)                                     the address execution was attempted at
``responsible-driver``        0x116 (P2)                                    the display driver's code the TDR names
``system-service-process``    0x4A, 0x01                                    a system service returned to user mode
                                                                            in a bad state: the calling process
``dpc-routine``               0x133                                         the DPC/ISR running too long is the first
                                                                            non-plumbing frame of the crashing stack
``irp-owner``                 0x9F with P1 = 3                              the blocked IRP (P4): the driver owning
                                                                            its current stack location's device
``hardware``                  0x124, 0x101, 0x9C, 0x80, 0x12B               a machine check / watchdog reported by
                                                                            the processor or platform
``memory-corruption``         0x1A, 0x4E, 0x19, 0xC1, 0x13A, 0x109          corrupted kernel structures: the stack
                                                                            first, else ``memory_corruption``
============================  ============================================  ==========================================

The fallback chain, for everything else and when a row's evidence is missing: ``faulting-pc`` (the crash
context's pc in a non-core module) → ``stack-frame`` (the first non-plumbing frame, innermost first, in a
third-party module; ``stack-scan`` when that frame was only found by scanning) → the same for any non-core
module → ``pc-core`` / ``stack-core`` (a kernel or HAL frame; ``is_core`` marks the weak evidence). With no
address inside any module there is no culprit: ntoskrnl.exe is never named by default.

Bug check plumbing frames (``KeBugCheckEx``, ``KiBugCheckDispatch``, ``KiPageFault``, ``KiExceptionDispatch``,
``RtlDispatchException``, ...; :data:`PLUMBING`) are skipped by symbol when a symbolizer named them; without
symbols, by position: when the stack starts at the bug check's own context (not an exception context), its
first frames in the kernel (``KeBugCheckEx`` and its dispatcher, :data:`PLUMBING_FRAMES_BY_POSITION`) are.

Core modules are the kernel, the HAL and the kernel-debugger transports; third-party means not an inbox
Windows module (:func:`dbgauto.vocab.inbox.is_inbox`).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from dbgauto.analysis.facts import CulpritFact, DriverFact, FrameFact
from dbgauto.analysis.naming import Symbolizer, module_short_name
from dbgauto.vocab.bugchecks import base_code
from dbgauto.vocab.inbox import is_inbox

__all__ = [
    "ATTRIBUTION",
    "CODE_ADDRESS_PARAMETER",
    "IRP_CHAIN_FIELDS",
    "IRP_CHAIN_X64",
    "IRP_CHAIN_X86",
    "PLUMBING",
    "PLUMBING_FRAMES_BY_POSITION",
    "Attribution",
    "IrpOwner",
    "find_culprit",
    "irp_chain_offsets",
    "irp_owner",
    "is_core_module",
    "module_basename",
    "rule_for",
]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


@dataclass(frozen=True, slots=True)
class Attribution:
    """One row of the attribution table: which bug checks, which parameter, what kind of evidence."""

    rule: str
    codes: frozenset[int]
    parameter: int | None
    kind: str  # code-address, process, stack, irp, hardware, memory-corruption
    evidence: str  # format with {module}, {process}, {p}


def _row(rule: str, codes: Sequence[int], parameter: int | None, kind: str, evidence: str) -> Attribution:
    return Attribution(rule, frozenset(codes), parameter, kind, evidence)


ATTRIBUTION: Final[tuple[Attribution, ...]] = (
    _row(
        "faulting-instruction",
        (0x0A, 0xD1, 0xC5, 0xD0, 0xD3),
        4,
        "code-address",
        "the instruction that referenced memory (parameter {p}) lies in {module}",
    ),
    _row(
        "faulting-instruction",
        (0x50, 0xCE, 0xD5, 0xD6),
        3,
        "code-address",
        "the instruction that referenced memory (parameter {p}) lies in {module}",
    ),
    _row(
        "exception-address",
        (0x1E, 0x7E, 0x8E, 0x3B),
        2,
        "code-address",
        "the exception address (parameter {p}) lies in {module}",
    ),
    _row(
        "execute-target",
        (0xFC,),
        1,
        "code-address",
        "execution was attempted at an address (parameter {p}) in {module}",
    ),
    _row(
        "responsible-driver",
        (0x116,),
        2,
        "code-address",
        "the timeout detection names code (parameter {p}) in {module}",
    ),
    _row(
        "system-service-process",
        (0x4A, 0x01),
        None,
        "process",
        "a system service returned to user mode in a bad state on behalf of {process}",
    ),
    _row("dpc-routine", (0x133,), None, "stack", "the DPC or interrupt routine running too long is in {module}"),
    _row("irp-owner", (0x9F,), 4, "irp", "the blocked power IRP (parameter {p}) is held by a device of {module}"),
    _row(
        "hardware",
        (0x124, 0x101, 0x9C, 0x80, 0x12B),
        None,
        "hardware",
        "the processor or platform reported a hardware error (machine check, watchdog or NMI)",
    ),
    _row(
        "memory-corruption",
        (0x1A, 0x4E, 0x19, 0xC1, 0x13A, 0x109),
        None,
        "memory-corruption",
        "kernel memory structures were found corrupted; no driver is named by the evidence",
    ),
)
_BY_CODE: Final = {c: row for row in ATTRIBUTION for c in row.codes}

# bug check base code → 1-based parameter that holds a code address (the code-address rows above)
CODE_ADDRESS_PARAMETER: Final[dict[int, int]] = {
    c: row.parameter for row in ATTRIBUTION if row.kind == "code-address" and row.parameter for c in row.codes
}

PLUMBING: Final = _words(
    """
    KeBugCheckEx KeBugCheck2 KeBugCheck KiBugCheckDispatch KiPageFault KiExceptionDispatch KiDispatchException
    RtlDispatchException RtlpExecuteHandlerForException _C_specific_handler __C_specific_handler
    KiGeneralProtectionFault KiInvalidOpcodeFault KiDivideErrorFault KiDebugTrapOrFault KiBreakpointTrap
    KiDoubleFaultAbort KiSystemServiceHandler KiSystemServiceExit KiTrap0E KiTrap0D KiTrap08 KiTrap06
    KiSystemFatalException KiFatalExceptionHandler KiFatalFilter KeAccumulateTicks KeClockInterruptNotify
    HalpTimerClockInterrupt HalpTimerClockIpiRoutine KiCallInterruptServiceRoutine
    KiInterruptSubDispatchNoLockNoEtw KiInterruptDispatchNoLockNoEtw KiUpdateRunTime KiUpdateTime
    KeBugCheckWithTf KiTrap0EHandler PspSystemThreadStartup KiStartSystemThread
    """
)
PLUMBING_FRAMES_BY_POSITION: Final = 2  # KeBugCheckEx + the dispatcher that called it, without symbols

_KD_EXTENSIBILITY: Final = re.compile(r"^kd_[0-9a-f]{2}_[0-9a-f]{4}\.dll$", re.I)
_CORE_NAMES: Final = _words(
    """
    ntoskrnl.exe ntkrnlmp.exe ntkrnlpa.exe ntkrpamp.exe ntkrla57.exe hal.dll halacpi.dll halaacpi.dll
    halmacpi.dll halapic.dll halmps.dll halsp.dll kd.dll kdcom.dll kdnet.dll kdstub.dll kd1394.dll kdusb.dll nt
    hal kd kdcom kdnet kdstub
    """
)

Read = Callable[[int, int], "bytes | None"]


def module_basename(name: str) -> str:
    """The file name of an NT path (``\\SystemRoot\\System32\\drivers\\x.sys`` → ``x.sys``)."""
    return name.rsplit("\\", 1)[-1] if name else name


def is_core_module(name: str) -> bool:
    """True for the kernel, HAL and kernel-debugger modules (never a useful culprit on their own)."""
    base = module_basename(name).lower()
    return base in _CORE_NAMES or bool(_KD_EXTENSIBILITY.match(base))


def rule_for(bugcheck_code: int | None) -> Attribution | None:
    """The attribution-table row of a bug check (``_M`` variants as their base code)."""
    return None if bugcheck_code is None else _BY_CODE.get(base_code(bugcheck_code))


class _Drivers:
    def __init__(self, drivers: Sequence[DriverFact]) -> None:
        self.drivers = drivers

    def at(self, address: int | None) -> DriverFact | None:
        if address is None:
            return None
        for d in self.drivers:
            if d.contains(address):
                return d
        return None

    def named(self, module: str | None) -> DriverFact | None:
        if not module:
            return None
        m = module.lower()
        for d in self.drivers:
            if d.name.lower() == m or module_short_name(d.name).lower() == m:
                return d
        return None


def _third_party(d: DriverFact) -> bool:
    return not is_inbox(d.path or d.name)


def _fact(
    drv: DriverFact, address: int, rule: str, evidence: str, symbolizer: Symbolizer | None, frame: FrameFact | None
) -> CulpritFact:
    base = drv.base if drv.base is not None else 0
    function, offset = None, address - base
    if frame is not None and frame.function:
        function, offset = frame.function, frame.offset
    elif symbolizer is not None:
        try:
            named = symbolizer.name(address)
        except Exception:  # a symbol source outside our control: no name
            named = None
        if named is not None and named[1]:
            function, offset = named[1], named[2]
    return CulpritFact(
        name=module_basename(drv.name),
        base=drv.base,
        offset=offset,
        timestamp=drv.timestamp,
        rule=rule,
        address=address,
        is_core=is_core_module(drv.name),
        module=module_short_name(drv.name),
        function=function,
        evidence=evidence,
    )


def _candidates(frames: Sequence[FrameFact], by_position: int) -> list[FrameFact]:
    """Frames innermost first without the bug check plumbing (by symbol when named, else by position)."""
    out = []
    named_any = any(f.function for f in frames)
    for i, f in enumerate(frames):
        if f.value is None:
            continue
        if named_any:
            if f.function in PLUMBING:
                continue
        elif i < by_position and f.module is not None and is_core_module(f.module):
            continue
        out.append(f)
    return out


# IRP owner chain (0x9F P1 = 3): IRP → current stack location → device → driver. Each step is one structure field;
# a symbol table's types give the offsets (:func:`irp_chain_offsets`), else these rows. x64: the offsets of
# _IRP.Tail.Overlay.CurrentStackLocation, _IO_STACK_LOCATION.DeviceObject, _DEVICE_OBJECT.DriverObject and
# _DRIVER_OBJECT.DriverStart / DriverName in all six ntkrnlmp ISF tables of ../shared/symbols (7601 to 22000; they
# agree, checked by tests/analysis/test_irp_owner.py). x86: the same fields laid out by the 32-bit C rules from the
# WDK's wdm.h definitions (IRP.Tail at 0x40 + Overlay.CurrentStackLocation 0x20; IO_STACK_LOCATION's 4 header
# bytes + a 16-byte Parameters union; DRIVER_OBJECT Type/Size/DeviceObject/Flags then DriverStart, DriverSize,
# DriverSection, DriverExtension, DriverName); no 32-bit table is in ../shared to check them against.
IRP_CHAIN_FIELDS: Final = (
    ("_IRP", "Tail.Overlay.CurrentStackLocation"),
    ("_IO_STACK_LOCATION", "DeviceObject"),
    ("_DEVICE_OBJECT", "DriverObject"),
    ("_DRIVER_OBJECT", "DriverStart"),
    ("_DRIVER_OBJECT", "DriverName"),
)
IRP_CHAIN_X64: Final = (0xB8, 0x28, 0x8, 0x18, 0x38)
IRP_CHAIN_X86: Final = (0x60, 0x14, 0x8, 0xC, 0x1C)
MAX_DRIVER_NAME_BYTES: Final = 512


def irp_chain_offsets(symbolizer: object | None, pointer_size: int) -> tuple[tuple[int, ...], str]:
    """The five offsets of :data:`IRP_CHAIN_FIELDS` and where they came from: the symbolizer's types (a
    SymbolContext's ``type(name)``, nested fields followed by their type names) when all resolve, else the row."""
    fallback = IRP_CHAIN_X64 if pointer_size == 8 else IRP_CHAIN_X86
    type_of = getattr(symbolizer, "type", None)
    if not callable(type_of):
        return fallback, "built-in offsets"
    out = []
    try:
        for type_name, path in IRP_CHAIN_FIELDS:
            off, current = 0, type_name
            for part in path.split("."):
                info = type_of(current)
                field = info.fields.get(part) if info is not None else None
                if field is None:
                    return fallback, "built-in offsets"
                off += field.offset
                current = str(field.type).rstrip("*")
            out.append(off)
    except Exception:  # a symbol source is outside our control: the built-in rows serve
        return fallback, "built-in offsets"
    return tuple(out), "symbol-table offsets"


def _pointer(read: Read, va: int, ptr: int) -> int | None:
    try:
        raw = read(va, ptr)
    except Exception:  # unreadable memory: no value
        return None
    if raw is None or len(raw) < ptr:
        return None
    return struct.unpack_from("<Q" if ptr == 8 else "<I", raw)[0] or None


def _driver_name(read: Read, va: int, ptr: int) -> str | None:
    """A UNICODE_STRING's text (Length, MaximumLength, Buffer at the pointer-aligned offset), bounded."""
    try:
        head = read(va, 2)
    except Exception:  # unreadable memory: no name
        return None
    buf = _pointer(read, va + ptr, ptr)
    if head is None or len(head) < 2 or buf is None:
        return None
    length = struct.unpack_from("<H", head)[0]
    if not 0 < length <= MAX_DRIVER_NAME_BYTES or length % 2:
        return None
    try:
        raw = read(buf, length)
    except Exception:  # unreadable memory: no name
        return None
    if raw is None or len(raw) < length:
        return None
    text = bytes(raw).decode("utf-16-le", "replace")
    return text if text.isprintable() else None


@dataclass(frozen=True, slots=True)
class IrpOwner:
    """What the blocked IRP's chain gave: the driver object, its code start and its name (``\\Driver\\x``)."""

    driver_object: int
    driver_start: int | None
    driver_name: str | None
    offsets_from: str


def irp_owner(read: Read | None, irp: int, ptr: int, symbolizer: object | None = None) -> IrpOwner | None:
    """Follow IRP → CurrentStackLocation → DeviceObject → DriverObject and read DriverStart and DriverName."""
    if read is None or not irp:
        return None
    offs, source = irp_chain_offsets(symbolizer, ptr)
    va: int | None = irp
    for off in offs[:3]:
        va = _pointer(read, va + off, ptr) if va else None
    if not va:
        return None
    start = _pointer(read, va + offs[3], ptr)
    name = _driver_name(read, va + offs[4], ptr)
    if start is None and name is None:
        return None
    return IrpOwner(va, start, name, source)


def find_culprit(
    *,
    bugcheck_code: int | None,
    bugcheck_parameters: Sequence[int],
    drivers: Sequence[DriverFact],
    frames: Sequence[FrameFact] = (),
    pc: int | None = None,
    stack_values: Sequence[int] = (),
    process_name: str | None = None,
    symbolizer: Symbolizer | None = None,
    read: Read | None = None,
    pointer_size: int = 8,
    plumbing_by_position: int = 0,
) -> CulpritFact | None:
    """Apply the attribution table, then the fallback chain (module docstring). ``frames``: the unwound stack,
    innermost first; ``stack_values``: bare code addresses when there are no frames (a debugger log's return
    addresses), treated as scan frames. ``read``: memory, for rows that follow pointers (``irp-owner``)."""
    mods = _Drivers(drivers)
    params = list(bugcheck_parameters)
    row = rule_for(bugcheck_code)
    stack = list(frames) or [FrameFact(i, value=v, trust="scan") for i, v in enumerate(stack_values) if v]
    cands = _candidates(stack, plumbing_by_position)

    def param(index: int | None) -> int | None:
        return params[index - 1] if index is not None and 0 < index <= len(params) and params[index - 1] else None

    if row is not None:
        if row.kind == "code-address":
            address = param(row.parameter)
            drv = mods.at(address)
            if address is not None and drv is not None and not is_core_module(drv.name):
                ev = row.evidence.format(p=row.parameter, module=module_basename(drv.name))
                return _fact(drv, address, row.rule, ev, symbolizer, _frame_at(stack, address))
        elif row.kind == "process" and process_name:
            top = cands[0] if cands else None
            drv = mods.at(top.value) if top is not None else None
            return CulpritFact(
                name=process_name,
                base=drv.base if drv else None,
                offset=(top.offset if top and top.function else (top.value - drv.base if top and drv else None)),
                rule=row.rule,
                address=top.value if top else None,
                module=module_short_name(drv.name) if drv else None,
                function=top.function if top else None,
                evidence=row.evidence.format(process=process_name),
            )
        elif row.kind == "irp" and params and params[0] == 3:
            owner = irp_owner(read, param(4) or 0, pointer_size, symbolizer)
            drv = mods.at(owner.driver_start) if owner is not None else None
            if owner is not None and drv is None and owner.driver_name:
                drv = mods.named(owner.driver_name.rsplit("\\", 1)[-1] + ".sys")
            if owner is not None and drv is not None:
                ev = row.evidence.format(p=4, module=module_basename(drv.name))
                if owner.driver_name:
                    ev += f" (driver object {owner.driver_object:#x}, {owner.driver_name})"
                return _fact(drv, owner.driver_start or drv.base or 0, row.rule, ev, symbolizer, None)
        elif row.kind == "stack":
            for f in cands:
                drv = mods.at(f.value)
                if drv is not None and not is_core_module(drv.name):
                    ev = row.evidence.format(module=module_basename(drv.name))
                    return _fact(drv, f.value or 0, row.rule, ev, symbolizer, f)
        elif row.kind == "hardware":
            return CulpritFact(name="hardware", rule=row.rule, module="hardware", evidence=row.evidence)
    got = _fallback(mods, cands, pc, symbolizer, stack)
    if got is None and row is not None and row.kind == "memory-corruption":
        return CulpritFact(name="memory_corruption", rule=row.rule, module="memory_corruption", evidence=row.evidence)
    if got is not None and row is not None and row.kind == "memory-corruption" and got.is_core:
        return CulpritFact(name="memory_corruption", rule=row.rule, module="memory_corruption", evidence=row.evidence)
    return got


def _frame_at(frames: Sequence[FrameFact], address: int) -> FrameFact | None:
    return next((f for f in frames if f.value == address and f.function), None)


def _fallback(
    mods: _Drivers,
    cands: Sequence[FrameFact],
    pc: int | None,
    symbolizer: Symbolizer | None,
    stack: Sequence[FrameFact],
) -> CulpritFact | None:
    pc_drv = mods.at(pc)
    if pc is not None and pc_drv is not None and not is_core_module(pc_drv.name):
        ev = f"the crash context's instruction pointer lies in {module_basename(pc_drv.name)}"
        return _fact(pc_drv, pc, "faulting-pc", ev, symbolizer, _frame_at(stack, pc))
    for want_third_party in (True, False):
        for f in cands:
            drv = mods.at(f.value)
            if drv is None or is_core_module(drv.name) or (want_third_party and not _third_party(drv)):
                continue
            scanned = f.trust == "scan" or f.trust is None
            rule = "stack-scan" if scanned else "stack-frame"
            how = "a code address found by scanning the stack" if scanned else f"stack frame {f.index}"
            kind = "third-party " if want_third_party else ""
            ev = f"{how} is the innermost {kind}code on the crashing stack, in {module_basename(drv.name)}"
            return _fact(drv, f.value or 0, rule, ev, symbolizer, f)
    if pc_drv is not None and pc is not None:
        ev = f"only the kernel or HAL holds the crash context's instruction pointer ({module_basename(pc_drv.name)})"
        return _fact(pc_drv, pc, "pc-core", ev, symbolizer, _frame_at(stack, pc))
    for f in cands:
        drv = mods.at(f.value)
        if drv is not None and f.trust not in (None, "scan"):
            ev = f"only kernel or HAL frames are on the crashing stack ({module_basename(drv.name)})"
            return _fact(drv, f.value or 0, "stack-core", ev, symbolizer, f)
    return None
