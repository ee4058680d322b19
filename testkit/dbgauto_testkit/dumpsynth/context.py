"""CONTEXT and EXCEPTION_RECORD bytes for synthetic dump headers (offsets from kd-structures.md §6-7)."""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Final

__all__ = [
    "AMD64_CONTEXT_SIZE",
    "AMD64_REGISTER_OFFSETS",
    "DEFAULT_AMD64_REGISTERS",
    "DEFAULT_X86_REGISTERS",
    "X86_CONTEXT_SIZE",
    "X86_REGISTER_OFFSETS",
    "amd64_context",
    "exception_record32",
    "exception_record64",
    "x86_context",
]

AMD64_CONTEXT_SIZE: Final = 0x4D0
X86_CONTEXT_SIZE: Final = 0x2CC

# name → (offset, struct code); names as the debugger prints them
AMD64_REGISTER_OFFSETS: Final[dict[str, tuple[int, str]]] = {
    "context_flags": (0x30, "I"),
    "mxcsr": (0x34, "I"),
    "cs": (0x38, "H"),
    "ds": (0x3A, "H"),
    "es": (0x3C, "H"),
    "fs": (0x3E, "H"),
    "gs": (0x40, "H"),
    "ss": (0x42, "H"),
    "efl": (0x44, "I"),
    "dr0": (0x48, "Q"),
    "dr1": (0x50, "Q"),
    "dr2": (0x58, "Q"),
    "dr3": (0x60, "Q"),
    "dr6": (0x68, "Q"),
    "dr7": (0x70, "Q"),
    "rax": (0x78, "Q"),
    "rcx": (0x80, "Q"),
    "rdx": (0x88, "Q"),
    "rbx": (0x90, "Q"),
    "rsp": (0x98, "Q"),
    "rbp": (0xA0, "Q"),
    "rsi": (0xA8, "Q"),
    "rdi": (0xB0, "Q"),
    **{f"r{n}": (0xB8 + 8 * (n - 8), "Q") for n in range(8, 16)},
    "rip": (0xF8, "Q"),
}
_AMD64_FLTSAVE: Final = 0x100  # XMM_SAVE_AREA32: ControlWord u16 @+0, MxCsr u32 @+0x18

X86_REGISTER_OFFSETS: Final[dict[str, tuple[int, str]]] = {
    "context_flags": (0x00, "I"),
    "dr0": (0x04, "I"),
    "dr1": (0x08, "I"),
    "dr2": (0x0C, "I"),
    "dr3": (0x10, "I"),
    "dr6": (0x14, "I"),
    "dr7": (0x18, "I"),
    "gs": (0x8C, "I"),
    "fs": (0x90, "I"),
    "es": (0x94, "I"),
    "ds": (0x98, "I"),
    "edi": (0x9C, "I"),
    "esi": (0xA0, "I"),
    "ebx": (0xA4, "I"),
    "edx": (0xA8, "I"),
    "ecx": (0xAC, "I"),
    "eax": (0xB0, "I"),
    "ebp": (0xB4, "I"),
    "eip": (0xB8, "I"),
    "cs": (0xBC, "I"),
    "efl": (0xC0, "I"),
    "esp": (0xC4, "I"),
    "ss": (0xC8, "I"),
}

# A plausible kernel-mode CPU state at KeBugCheckEx (selectors as Windows uses them, kd-structures.md §6).
DEFAULT_AMD64_REGISTERS: Final[dict[str, int]] = {
    "context_flags": 0x10001F,  # CONTEXT_AMD64 | CONTROL | INTEGER | SEGMENTS | FLOATING_POINT | DEBUG
    "mxcsr": 0x1F80,
    "cs": 0x10,
    "ds": 0x2B,
    "es": 0x2B,
    "fs": 0x53,
    "gs": 0x2B,
    "ss": 0x18,
    "efl": 0x40286,
    "rax": 0x0,
    "rcx": 0xD1,
    "rdx": 0xFFFFD00C2A4E7000,
    "rbx": 0x3,
    "rsp": 0xFFFFD00C2A4E6F88,
    "rbp": 0xFFFFD00C2A4E7100,
    "rsi": 0xFFFFB20F6C3E1080,
    "rdi": 0x0,
    "r8": 0x2,
    "r9": 0x0,
    "r10": 0xFFFFF8035A4C0000,
    "r11": 0xFFFFD00C2A4E6F70,
    "r12": 0x0,
    "r13": 0x0,
    "r14": 0x0,
    "r15": 0x0,
    "rip": 0xFFFFF8035A7F5F10,
}

DEFAULT_X86_REGISTERS: Final[dict[str, int]] = {
    "context_flags": 0x1001F,  # CONTEXT_i386 | CONTROL | INTEGER | SEGMENTS | FLOATING_POINT | DEBUG
    "cs": 0x08,
    "ds": 0x23,
    "es": 0x23,
    "fs": 0x30,
    "gs": 0x00,
    "ss": 0x10,
    "efl": 0x00000246,
    "eax": 0x0,
    "ebx": 0x8054C0C0,
    "ecx": 0xD1,
    "edx": 0x0,
    "esi": 0x89A3E020,
    "edi": 0x0,
    "ebp": 0xB2F4FBF0,
    "esp": 0xB2F4FBD4,
    "eip": 0x8053C7D0,
}


def _pack_registers(size: int, offsets: Mapping[str, tuple[int, str]], registers: Mapping[str, int]) -> bytearray:
    buf = bytearray(size)
    for name, value in registers.items():
        try:
            offset, code = offsets[name.lower()]
        except KeyError:
            raise ValueError(f"unknown register {name!r}") from None
        struct.pack_into("<" + code, buf, offset, value)
    return buf


def amd64_context(registers: Mapping[str, int] | None = None) -> bytes:
    """A 0x4D0-byte AMD64 CONTEXT: defaults overridden by ``registers`` (rax…r15, rip, rsp, efl, cs…).

    MxCsr is mirrored into FltSave.MxCsr because kdmp-parser checks that the two agree.
    """
    regs = {**DEFAULT_AMD64_REGISTERS, **(registers or {})}
    buf = _pack_registers(AMD64_CONTEXT_SIZE, AMD64_REGISTER_OFFSETS, regs)
    struct.pack_into("<H", buf, _AMD64_FLTSAVE, 0x27F)  # FPU ControlWord after FNINIT
    struct.pack_into("<I", buf, _AMD64_FLTSAVE + 0x18, regs["mxcsr"])
    return bytes(buf)


def x86_context(registers: Mapping[str, int] | None = None) -> bytes:
    """A 0x2CC-byte x86 CONTEXT: defaults overridden by ``registers`` (eax…edi, eip, esp, efl, cs…)."""
    regs = {**DEFAULT_X86_REGISTERS, **(registers or {})}
    buf = _pack_registers(X86_CONTEXT_SIZE, X86_REGISTER_OFFSETS, regs)
    struct.pack_into("<H", buf, 0x1C, 0x27F)  # FloatSave.ControlWord
    return bytes(buf)


def _params(parameters: Sequence[int]) -> list[int]:
    if len(parameters) > 15:
        raise ValueError("EXCEPTION_RECORD holds at most 15 parameters")
    return [*parameters, *([0] * (15 - len(parameters)))]


def exception_record64(
    code: int = 0x80000003, flags: int = 0, record: int = 0, address: int = 0, parameters: Sequence[int] = ()
) -> bytes:
    """EXCEPTION_RECORD64 (0x98 bytes): code, flags, record, address, NumberParameters, pad, info[15]."""
    return struct.pack("<IIQQII15Q", code, flags, record, address, len(parameters), 0, *_params(parameters))


def exception_record32(
    code: int = 0x80000003, flags: int = 0, record: int = 0, address: int = 0, parameters: Sequence[int] = ()
) -> bytes:
    """EXCEPTION_RECORD32 (0x50 bytes): the same fields as 32-bit values, info[15] at 0x14."""
    return struct.pack("<IIIII15I", code, flags, record, address, len(parameters), *_params(parameters))
