"""CONTEXT (AMD64, x86, ARM64) and EXCEPTION_RECORD32/64, decoded into architecture-neutral values.

Offsets: AMD64 from kdmp-parser's CONTEXT (static_assert Xmm0 == 0x1A0) and memprocfs' writer; x86 and ARM64
from PDB-derived headers; EXCEPTION_RECORD from kdmp-parser / volatility3 (``../shared/spec/kd-structures.md``
§6–§7). Register names are the ones the debugger prints (``r`` command), lower-case.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from dbgauto.kdump.constants import Machine
from dbgauto.util.codec import Hex
from dbgauto.util.layout import Buffer, Layout

CONTEXT_AMD64: Final = Layout(
    "CONTEXT_AMD64",
    [
        ("p_home", 0x00, "6Q"),
        ("context_flags", 0x30, "I"),
        ("mxcsr", 0x34, "I"),
        ("cs", 0x38, "H"),
        ("ds", 0x3A, "H"),
        ("es", 0x3C, "H"),
        ("fs", 0x3E, "H"),
        ("gs", 0x40, "H"),
        ("ss", 0x42, "H"),
        ("efl", 0x44, "I"),
        ("dr0", 0x48, "Q"),
        ("dr1", 0x50, "Q"),
        ("dr2", 0x58, "Q"),
        ("dr3", 0x60, "Q"),
        ("dr6", 0x68, "Q"),
        ("dr7", 0x70, "Q"),
        ("rax", 0x78, "Q"),
        ("rcx", 0x80, "Q"),
        ("rdx", 0x88, "Q"),
        ("rbx", 0x90, "Q"),
        ("rsp", 0x98, "Q"),
        ("rbp", 0xA0, "Q"),
        ("rsi", 0xA8, "Q"),
        ("rdi", 0xB0, "Q"),
        ("r8", 0xB8, "Q"),
        ("r9", 0xC0, "Q"),
        ("r10", 0xC8, "Q"),
        ("r11", 0xD0, "Q"),
        ("r12", 0xD8, "Q"),
        ("r13", 0xE0, "Q"),
        ("r14", 0xE8, "Q"),
        ("r15", 0xF0, "Q"),
        ("rip", 0xF8, "Q"),
        ("flt_save", 0x100, "512s"),  # XMM_SAVE_AREA32; its MxCsr copy sits at +0x18
        ("vector_register", 0x300, "416s"),
        ("vector_control", 0x4A0, "Q"),
        ("debug_control", 0x4A8, "Q"),
        ("last_branch_to_rip", 0x4B0, "Q"),
        ("last_branch_from_rip", 0x4B8, "Q"),
        ("last_exception_to_rip", 0x4C0, "Q"),
        ("last_exception_from_rip", 0x4C8, "Q"),
    ],
    size=0x4D0,
)

CONTEXT_X86: Final = Layout(
    "CONTEXT_X86",
    [
        ("context_flags", 0x00, "I"),
        ("dr0", 0x04, "I"),
        ("dr1", 0x08, "I"),
        ("dr2", 0x0C, "I"),
        ("dr3", 0x10, "I"),
        ("dr6", 0x14, "I"),
        ("dr7", 0x18, "I"),
        ("float_save", 0x1C, "112s"),
        ("gs", 0x8C, "I"),
        ("fs", 0x90, "I"),
        ("es", 0x94, "I"),
        ("ds", 0x98, "I"),
        ("edi", 0x9C, "I"),
        ("esi", 0xA0, "I"),
        ("ebx", 0xA4, "I"),
        ("edx", 0xA8, "I"),
        ("ecx", 0xAC, "I"),
        ("eax", 0xB0, "I"),
        ("ebp", 0xB4, "I"),
        ("eip", 0xB8, "I"),
        ("cs", 0xBC, "I"),
        ("efl", 0xC0, "I"),
        ("esp", 0xC4, "I"),
        ("ss", 0xC8, "I"),
        ("extended_registers", 0xCC, "512s"),
    ],
    size=0x2CC,
)

CONTEXT_ARM64: Final = Layout(
    "CONTEXT_ARM64",
    [
        ("context_flags", 0x00, "I"),
        ("cpsr", 0x04, "I"),
        *((f"x{i}", 0x08 + 8 * i, "Q") for i in range(29)),
        ("fp", 0xF0, "Q"),  # x29
        ("lr", 0xF8, "Q"),  # x30
        ("sp", 0x100, "Q"),
        ("pc", 0x108, "Q"),
        ("v", 0x110, "512s"),  # V0..V31, 16 bytes each
        ("fpcr", 0x310, "I"),
        ("fpsr", 0x314, "I"),
        ("bcr", 0x318, "8I"),
        ("bvr", 0x338, "8Q"),
        ("wcr", 0x378, "2I"),
        ("wvr", 0x380, "2Q"),
    ],
    size=0x390,
)

CONTEXT_LAYOUTS: Final[Mapping[int, Layout]] = {
    Machine.AMD64: CONTEXT_AMD64,
    Machine.I386: CONTEXT_X86,
    Machine.ARM64: CONTEXT_ARM64,
}

# (pc, sp, frame pointer) register names per machine.
_PC_SP_FP: Final[Mapping[int, tuple[str, str, str]]] = {
    Machine.AMD64: ("rip", "rsp", "rbp"),
    Machine.I386: ("eip", "esp", "ebp"),
    Machine.ARM64: ("pc", "sp", "fp"),
}

EXCEPTION_MAXIMUM_PARAMETERS: Final = 15

EXCEPTION_RECORD64: Final = Layout(
    "EXCEPTION_RECORD64",
    [
        ("exception_code", 0x00, "I"),
        ("exception_flags", 0x04, "I"),
        ("exception_record", 0x08, "Q"),
        ("exception_address", 0x10, "Q"),
        ("number_parameters", 0x18, "I"),
        ("unused_alignment", 0x1C, "I"),
        ("exception_information", 0x20, "15Q"),
    ],
    size=0x98,
)

EXCEPTION_RECORD32: Final = Layout(
    "EXCEPTION_RECORD32",
    [
        ("exception_code", 0x00, "I"),
        ("exception_flags", 0x04, "I"),
        ("exception_record", 0x08, "I"),
        ("exception_address", 0x0C, "I"),
        ("number_parameters", 0x10, "I"),
        ("exception_information", 0x14, "15I"),
    ],
    size=0x50,
)


@dataclass(frozen=True, slots=True)
class CpuContext:
    """The saved registers of one processor, whatever the architecture."""

    machine: int
    registers: Mapping[str, int]
    raw: bytes = field(repr=False)

    @property
    def pc(self) -> int:
        return self.registers[_PC_SP_FP[self.machine][0]]

    @property
    def sp(self) -> int:
        return self.registers[_PC_SP_FP[self.machine][1]]

    @property
    def fp(self) -> int:
        return self.registers[_PC_SP_FP[self.machine][2]]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: machine, ContextFlags and every scalar register as "0x…" strings."""
        regs = {k: f"{v:#x}" for k, v in self.registers.items() if k != "context_flags"}
        return {
            "machine": f"{self.machine:#x}",
            "context_flags": f"{self.registers['context_flags']:#x}",
            "registers": regs,
        }


@dataclass(frozen=True, slots=True)
class ExceptionRecord:
    """EXCEPTION_RECORD32/64; ``parameters`` holds only the ``number_parameters`` that are meaningful."""

    code: Hex
    flags: Hex
    record: Hex
    address: Hex
    number_parameters: int
    parameters: tuple[Hex, ...]  # JSON (dbgauto.util.codec.to_json): addresses and codes as "0x…" strings


def context_layout(machine: int) -> Layout:
    try:
        return CONTEXT_LAYOUTS[machine]
    except KeyError:
        raise ValueError(f"no CONTEXT layout for machine {machine:#x}") from None


def parse_context(machine: int, buf: Buffer, offset: int = 0) -> CpuContext:
    """Decode a CONTEXT of ``machine`` at ``offset``: scalar registers by name, raw bytes kept."""
    lay = context_layout(machine)
    values = lay.unpack(buf, offset)
    regs = {k: v for k, v in values.items() if isinstance(v, int) and k != "context_flags"}
    regs["context_flags"] = values["context_flags"]
    return CpuContext(machine, regs, bytes(memoryview(buf)[offset : offset + lay.size]))


def pack_context(machine: int, registers: Mapping[str, int], base: bytes | None = None) -> bytes:
    """A CONTEXT of ``machine``: ``base`` (or zeros) with the given registers written over it."""
    lay = context_layout(machine)
    buf = bytearray(base[: lay.size]) if base is not None else bytearray(lay.size)
    buf.extend(b"\0" * (lay.size - len(buf)))
    lay.pack_into(buf, 0, {k: v for k, v in registers.items() if k in lay.by_name})
    return bytes(buf)


def parse_exception(is_64bit: bool, buf: Buffer, offset: int = 0) -> ExceptionRecord:
    """Decode EXCEPTION_RECORD64 (or 32); parameters are bounded by EXCEPTION_MAXIMUM_PARAMETERS."""
    lay = EXCEPTION_RECORD64 if is_64bit else EXCEPTION_RECORD32
    v = lay.unpack(buf, offset)
    n = v["number_parameters"]
    params = tuple(v["exception_information"][: min(n, EXCEPTION_MAXIMUM_PARAMETERS)])
    return ExceptionRecord(
        code=v["exception_code"],
        flags=v["exception_flags"],
        record=v["exception_record"],
        address=v["exception_address"],
        number_parameters=n,
        parameters=params,
    )
