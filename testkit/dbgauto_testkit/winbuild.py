"""Build real Windows PE images with Debian's clang/lld, read them with llvm-readobj, and run them in unicorn.

Everything a test expects about an image comes from here, independently of ``dbgauto.pe``: the layout from
``llvm-readobj`` text, the call chain from the C/assembly source, the stack from executing the machine code
in the unicorn CPU emulator (the image is laid out from llvm-readobj's section table, not by our reader).
"""

from __future__ import annotations

import itertools
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TRIPLES = {"x64": "x86_64-pc-windows-msvc", "arm64": "aarch64-pc-windows-msvc", "x86": "i686-pc-windows-msvc"}

# top_a → mid_b → frame_d (alloca: a frame register on x64) → leaf_c (__debugbreak stops the emulator).
CHAIN_C = r"""
__declspec(dllexport) volatile int sink;
__declspec(dllexport) __declspec(noinline) int leaf_c(int x) {
    volatile int buf[40];
    for (int i = 0; i < 40; i++) buf[i] = x + i;
    __debugbreak();
    return buf[3] + buf[39];
}
__declspec(dllexport) __declspec(noinline) int frame_d(int x) {
    volatile char *p = __builtin_alloca((x & 63) + 16);
    p[1] = (char)x;
    return leaf_c(x + p[1]) + 5;
}
__declspec(dllexport) __declspec(noinline) int mid_b(int x, int y) {
    volatile char big[300];
    big[x & 255] = (char)y;
    int r = frame_d(x + big[y & 255]);
    return r * 3 + y;
}
__declspec(dllexport) __declspec(noinline) int top_a(int x) {
    int r = mid_b(x, x * 7);
    sink = r;
    return r + 1;
}
"""
CHAIN = ["leaf_c", "frame_d", "mid_b", "top_a"]

# x64 assembly exercising every unwind code a compiler rarely emits: PUSH_MACHFRAME (with error code),
# SET_FPREG with an offset, SAVE_NONVOL, SAVE_XMM128, ALLOC_LARGE (both forms) and a chained fragment.
# top2 → interrupted (frame register rsi) → [simulated trap: a machine frame + error code] → isr → leaf2.
TRAP_S = r"""
.intel_syntax noprefix
.text
.globl top2
.def top2; .scl 2; .type 32; .endef
.seh_proc top2
top2:
  push rbx
  .seh_pushreg rbx
  sub rsp, 0x1000
  .seh_stackalloc 0x1000
  .seh_endprologue
  call interrupted
  add rsp, 0x1000
  pop rbx
  ret
.seh_endproc

.globl interrupted
.def interrupted; .scl 2; .type 32; .endef
.seh_proc interrupted
interrupted:
  push rsi
  .seh_pushreg rsi
  push r12
  .seh_pushreg r12
  sub rsp, 0x88
  .seh_stackalloc 0x88
  lea rsi, [rsp + 0x20]
  .seh_setframe rsi, 0x20
  .seh_endprologue
  mov r12, rsp
  push 0x18
  push r12
  pushfq
  push 0x10
  lea rax, [rip + resumed]
  push rax
  push 0x1234
  jmp isr
.globl resumed
resumed:
  lea rsp, [rsi - 0x20]
  add rsp, 0x88
  pop r12
  pop rsi
  ret
.seh_endproc

.globl isr
.def isr; .scl 2; .type 32; .endef
.seh_proc isr
isr:
  .seh_pushframe @code
  push rbp
  .seh_pushreg rbp
  sub rsp, 0x100010
  .seh_stackalloc 0x100010
  .seh_endprologue
  nop
  .seh_startchained
  sub rsp, 0x40
  .seh_stackalloc 0x40
  mov [rsp + 0x38], rsi
  .seh_savereg rsi, 0x38
  movaps [rsp + 0x20], xmm6
  .seh_savexmm xmm6, 0x20
  .seh_endprologue
  mov rsi, 0x5555
  call leaf2
  .seh_endchained
  int3
.seh_endproc

.globl leaf2
.def leaf2; .scl 2; .type 32; .endef
leaf2:
  int3
  ret
"""
TRAP_CHAIN = ["leaf2", "isr", "interrupted", "top2"]

# ARM64 prolog shapes, one function each, called in a line: top_a → vlr_v → vsum_v (variadic: lr saved alone,
# save_reg(_x) of x30) → three_t (x19-x21) → iregs_g (x19-x25, the odd register paired with lr) → odd_fregs_o
# (d8-d10) → fregs_f (d8-d15) → big_e (> 4 KiB of locals) → huge_l (> 32 KiB: alloc_l) → mid_h (> 512 bytes)
# → alloca_d (sp moves below x29) → leaf_c (no stack: no .pdata).
PROLOGS_C = r"""
__declspec(dllexport) volatile int sink;
__declspec(dllexport) volatile double dsink;
__declspec(dllexport) __declspec(noinline) int leaf_c(int x) { return x * 3 + sink; }
__declspec(dllexport) __declspec(noinline) int alloca_d(int x) {
    volatile char *p = __builtin_alloca((x & 63) + 16);
    p[1] = (char)x;
    return leaf_c(x + p[1]) + 5;
}
__declspec(dllexport) __declspec(noinline) int mid_h(int x) {
    volatile char mid[700];
    mid[x & 255] = (char)x;
    return alloca_d(x + mid[3]) * 3;
}
__declspec(dllexport) __declspec(noinline) int huge_l(int x) {
    volatile char huge[40000];
    huge[x & 1023] = (char)x;
    return mid_h(x + huge[9]) + 7;
}
__declspec(dllexport) __declspec(noinline) int big_e(int x) {
    volatile char big[5000];
    big[x & 255] = (char)x;
    return huge_l(x + big[7]) + 2;
}
__declspec(dllexport) __declspec(noinline) double fregs_f(int x, double a) {
    double b = a * 2, c = a * 3, d = a * 5, e = a * 7, f = a * 11, g = a * 13, h = a * 17, i = a * 19;
    int r = big_e(x);
    dsink = b + c + d + e + f + g + h + i;
    return r + b * c * d * e * f * g * h * i;
}
__declspec(dllexport) __declspec(noinline) int odd_fregs_o(int x, double a) {
    double b = a * 2, c = a * 3, d = a * 5;
    int r = (int)fregs_f(x, a);
    dsink = b * c * d;
    return r + (int)(b + c + d);
}
__declspec(dllexport) __declspec(noinline) int iregs_g(int x, int y, int z) {
    int a = x * 3, b = y * 5, c = z * 7, d = x * y, e = y * z, f = x * z;
    int g = x + y + z, h = x - y, i = y - z, j = x ^ z;
    int r = odd_fregs_o(a, (double)b);
    return r + a + b + c + d + e + f + g + h + i + j;
}
__declspec(dllexport) __declspec(noinline) int three_t(int x, int y) {
    int a = x * 3, b = y * 5, c = x ^ y;
    int r = iregs_g(a, b, c);
    return r + a + b + c;
}
typedef __builtin_va_list va_list;
__declspec(dllexport) __declspec(noinline) int vsum_v(int n, ...) {
    va_list ap;
    __builtin_va_start(ap, n);
    int s = 0;
    for (int i = 0; i < n; i++) s += __builtin_va_arg(ap, int);
    __builtin_va_end(ap);
    return three_t(s, n) + s;
}
__declspec(dllexport) __declspec(noinline) int vlr_v(int n, ...) {
    va_list ap;
    __builtin_va_start(ap, n);
    int s = __builtin_va_arg(ap, int);
    __builtin_va_end(ap);
    return vsum_v(2, s, n) + 1;
}
__declspec(dllexport) __declspec(noinline) int top_a(int x) {
    int r = vlr_v(1, x + 1);
    sink = r;
    return r + 1;
}
"""
PROLOGS_CHAIN = [
    "leaf_c",
    "alloca_d",
    "mid_h",
    "huge_l",
    "big_e",
    "fregs_f",
    "odd_fregs_o",
    "iregs_g",
    "three_t",
    "vsum_v",
    "vlr_v",
    "top_a",
]

# x86 FPO mixed with EBP frames: top_a (EBP) → fpo_b (FPO: ebx, 300 bytes of locals) → ebp_m (EBP: esi, edi)
# → fpo_n (FPO, uses ebp as a general register: the EBP chain breaks here) → wide_w (cdecl, 24 bytes of
# arguments) → std_s (stdcall: pops its 20 bytes) → leaf_c (FPO, locals).
FPO_C = r"""
__declspec(dllexport) volatile int sink;
__declspec(dllexport) __declspec(noinline) int leaf_c(int x) {
    volatile int buf[40];
    buf[x & 31] = x;
    return buf[3] + buf[39];
}
int ebp_m(int x, int y);
__declspec(dllexport) __declspec(noinline) int __stdcall std_s(int a, int b, int c, int d, int e) {
    int r = leaf_c(a + b + c);
    return r + d * e;
}
__declspec(dllexport) __declspec(noinline) int wide_w(int a, int b, int c, int d, int e, int f) {
    int r = std_s(a, b, c, d, e + f);
    return r + a * f;
}
__declspec(dllexport) __declspec(noinline) int fpo_n(int x, int y) {
    int a = x * 3, b = y * 5, c = x ^ y, d = x - y, e = x + 7;
    int r = wide_w(a + b, a, b, c, d, e);
    return r + a * b + c * d + e;
}
__declspec(dllexport) __declspec(noinline) int fpo_b(int x, int y) {
    volatile char big[300];
    big[x & 255] = (char)y;
    int r = ebp_m(x + big[y & 255], y);
    return r * 3 + y;
}
"""
EBP_C = r"""
extern volatile int sink;
int fpo_n(int x, int y);
int fpo_b(int x, int y);
__declspec(dllexport) __declspec(noinline) int ebp_m(int x, int y) {
    int a = x * 3, b = y * 5;
    int r = fpo_n(a, b);
    return r + a + b;
}
__declspec(dllexport) __declspec(noinline) int top_a(int x) {
    int r = fpo_b(x, x * 7);
    sink = r;
    return r + 1;
}
"""
FPO_CHAIN = ["leaf_c", "std_s", "wide_w", "fpo_n", "ebp_m", "fpo_b", "top_a"]

# ARM64 unwind codes compilers rarely emit, from assembly with .seh directives: save_r19r20_x + save_next,
# save_reg(_x) (x29 too), save_fregp_x, save_freg(_x), alloc_s/m, save_lrpair, add_fp, nop, and two epilogs
# with their own code sequences (x0 != 0 takes the second). rare_top → rare → rare_leaf (no .pdata).
RARE_S = r"""
.text
.p2align 2
.globl rare_top
.seh_proc rare_top
rare_top:
  stp x29, x30, [sp, #-16]!
  .seh_save_fplr_x 16
  mov x29, sp
  .seh_set_fp
  .seh_endprologue
  bl rare
  add x0, x0, #1
  .seh_startepilogue
  ldp x29, x30, [sp], #16
  .seh_save_fplr_x 16
  .seh_endepilogue
  ret
.seh_endproc

.p2align 2
.globl rare
.seh_proc rare
rare:
  stp x19, x20, [sp, #-64]!
  .seh_save_r19r20_x 64
  stp x21, x22, [sp, #16]
  .seh_save_next
  stp x23, x24, [sp, #32]
  .seh_save_next
  str x25, [sp, #48]
  .seh_save_reg x25, 48
  str x26, [sp, #-16]!
  .seh_save_reg_x x26, 16
  stp d8, d9, [sp, #-32]!
  .seh_save_fregp_x d8, 32
  str d10, [sp, #16]
  .seh_save_freg d10, 16
  str d12, [sp, #-16]!
  .seh_save_freg_x d12, 16
  sub sp, sp, #32
  .seh_stackalloc 32
  stp x27, x30, [sp]
  .seh_save_lrpair x27, 0
  str x29, [sp, #16]
  .seh_save_reg x29, 16
  add x29, sp, #16
  .seh_add_fp 16
  sub sp, sp, #2048
  .seh_stackalloc 2048
  nop
  .seh_nop
  .seh_endprologue
  mov x19, x0
  mov x20, #20
  mov x21, #21
  mov x22, #22
  mov x23, #23
  mov x24, #24
  mov x25, #25
  mov x26, #26
  mov x27, #27
  fmov d8, x20
  fmov d9, x21
  fmov d10, x22
  fmov d12, x23
  bl rare_leaf
  cbnz x19, 1f
  .seh_startepilogue
  nop
  .seh_nop
  add sp, sp, #2048
  .seh_stackalloc 2048
  ldr x29, [sp, #16]
  .seh_save_reg x29, 16
  ldp x27, x30, [sp]
  .seh_save_lrpair x27, 0
  add sp, sp, #32
  .seh_stackalloc 32
  ldr d12, [sp], #16
  .seh_save_freg_x d12, 16
  ldr d10, [sp, #16]
  .seh_save_freg d10, 16
  ldp d8, d9, [sp], #32
  .seh_save_fregp_x d8, 32
  ldr x26, [sp], #16
  .seh_save_reg_x x26, 16
  ldr x25, [sp, #48]
  .seh_save_reg x25, 48
  ldp x23, x24, [sp, #32]
  .seh_save_next
  ldp x21, x22, [sp, #16]
  .seh_save_next
  ldp x19, x20, [sp], #64
  .seh_save_r19r20_x 64
  .seh_endepilogue
  ret
1:
  add x0, x0, #5
  .seh_startepilogue
  add sp, sp, #2048
  .seh_stackalloc 2048
  ldr x29, [sp, #16]
  .seh_save_reg x29, 16
  ldp x27, x30, [sp]
  .seh_save_lrpair x27, 0
  add sp, sp, #32
  .seh_stackalloc 32
  ldr d12, [sp], #16
  .seh_save_freg_x d12, 16
  ldr d10, [sp, #16]
  .seh_save_freg d10, 16
  ldp d8, d9, [sp], #32
  .seh_save_fregp_x d8, 32
  ldr x26, [sp], #16
  .seh_save_reg_x x26, 16
  ldr x25, [sp, #48]
  .seh_save_reg x25, 48
  ldp x23, x24, [sp, #32]
  .seh_save_next
  ldp x21, x22, [sp, #16]
  .seh_save_next
  ldp x19, x20, [sp], #64
  .seh_save_r19r20_x 64
  .seh_endepilogue
  ret
.seh_endproc

.p2align 2
.globl rare_leaf
rare_leaf:
  add x0, x0, #3
  ret
"""
RARE_EXPORTS = ("/export:rare_top", "/export:rare", "/export:rare_leaf")

# Where each custom ARM64 unwind code finds the interrupted context on the stack, and how the assembly below
# builds it: (directive, size, [(offset, register)]); offsets from Microsoft's ARM64 CONTEXT and
# _KTRAP_FRAME (Sp 0x98, Lr 0x138, Fp 0x140, Pc 0x148) and the machine frame {sp, pc}.
_CUSTOM = {
    "mf": (".seh_pushframe", 16, [(0, "x10"), (8, "x11")]),
    "ctx": (".seh_context", 0x390, [(0x100, "x10"), (0x108, "x11"), (0xF0, "x29"), (0xF8, "x30")]),
    "trap": (".seh_trap_frame", 0x150, [(0x98, "x10"), (0x148, "x11"), (0x140, "x29"), (0x138, "x30")]),
}


def _custom_s(kind: str) -> str:
    directive, size, stores = _CUSTOM[kind]
    body = "\n".join(f"  str {reg}, [sp, #{off}]" for off, reg in stores)
    return f"""
.p2align 2
.globl {kind}_top
.seh_proc {kind}_top
{kind}_top:
  stp x29, x30, [sp, #-16]!
  .seh_save_fplr_x 16
  mov x29, sp
  .seh_set_fp
  .seh_endprologue
  bl {kind}_int
  add x0, x0, #1
  .seh_startepilogue
  ldp x29, x30, [sp], #16
  .seh_save_fplr_x 16
  .seh_endepilogue
  ret
.seh_endproc

.p2align 2
.globl {kind}_int
.seh_proc {kind}_int
{kind}_int:
  stp x29, x30, [sp, #-32]!
  .seh_save_fplr_x 32
  str x19, [sp, #16]
  .seh_save_reg x19, 16
  mov x29, sp
  .seh_set_fp
  .seh_endprologue
  mov x19, #0x77
  sub sp, sp, #{size}
  add x10, sp, #{size}
  adr x11, {kind}_resumed
{body}
  b {kind}_handler
.globl {kind}_resumed
{kind}_resumed:
  add sp, sp, #{size}
  mov x0, x19
  .seh_startepilogue
  ldr x19, [sp, #16]
  .seh_save_reg x19, 16
  ldp x29, x30, [sp], #32
  .seh_save_fplr_x 32
  .seh_endepilogue
  ret
.seh_endproc

.p2align 2
.globl {kind}_handler
.seh_proc {kind}_handler
{kind}_handler:
  nop
  {directive}
  stp x29, x30, [sp, #-16]!
  .seh_save_fplr_x 16
  mov x29, sp
  .seh_set_fp
  .seh_endprologue
  bl {kind}_leaf
  brk #1
.seh_endproc

.globl {kind}_leaf
{kind}_leaf:
  brk #0xf000
  ret
"""


CUSTOM_S = ".text\n" + "".join(_custom_s(k) for k in _CUSTOM)
CUSTOM_EXPORTS = tuple(f"/export:{k}_{part}" for k in _CUSTOM for part in ("top", "int", "resumed", "handler", "leaf"))

VERSION_RC = r"""
1 VERSIONINFO
FILEVERSION 10,0,19041,3803
PRODUCTVERSION 10,0,19041,1
BEGIN
  BLOCK "StringFileInfo"
  BEGIN
    BLOCK "040904b0"
    BEGIN
      VALUE "CompanyName", "Contoso Drivers Ltd."
      VALUE "FileVersion", "10.0.19041.3803 (WinBuild.160101.0800)"
      VALUE "ProductName", "Contoso Widget"
    END
  END
  BLOCK "VarFileInfo"
  BEGIN
    VALUE "Translation", 0x409, 1200
  END
END
"""


TOOLS = ("clang", "lld-link", "llvm-readobj")


def _missing_tools_reason() -> str | None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    return f"needs {', '.join(missing)} (Debian packages clang, lld, llvm; .ci/run installs them)" if missing else None


def require_toolchain() -> None:
    """Skip the calling test when clang, lld-link or llvm-readobj is missing."""
    reason = _missing_tools_reason()
    if reason:
        pytest.skip(reason)


needs_toolchain = pytest.mark.skipif(_missing_tools_reason() is not None, reason=_missing_tools_reason() or "")
"""The same as a mark (``pytestmark = needs_toolchain`` for a module of toolchain tests)."""


def _run(cmd: list[str], cwd: Path) -> str:
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    if p.returncode:
        raise AssertionError(f"{cmd[0]} failed: {p.stderr or p.stdout}")
    return p.stdout


def build(
    tmp: Path,
    name: str,
    arch: str,
    *,
    c_source: str | None = None,
    asm: str | None = None,
    rc: str | None = None,
    cflags: tuple[str, ...] = (),
    link: tuple[str, ...] = ("/dll", "/noentry"),
) -> Path:
    """Compile (C or assembly), optionally add a version resource, link with lld-link; return the image path."""
    require_toolchain()
    tmp.mkdir(parents=True, exist_ok=True)
    objs = []
    src = tmp / (f"{name}.c" if c_source is not None else f"{name}.s")
    src.write_text(c_source if c_source is not None else asm or "")
    obj = tmp / f"{name}.obj"
    _run(
        ["clang", f"--target={TRIPLES[arch]}", "-O1", "-mno-stack-arg-probe", *cflags, "-c", str(src), "-o", str(obj)],
        tmp,
    )
    objs.append(str(obj))
    if rc is not None:
        if shutil.which("llvm-rc") is None:
            pytest.skip("needs llvm-rc (Debian package llvm)")
        (tmp / f"{name}.rc").write_text(rc)
        _run(["llvm-rc", "/fo", str(tmp / f"{name}.res"), str(tmp / f"{name}.rc")], tmp)
        objs.append(str(tmp / f"{name}.res"))
    out = tmp / f"{name}.dll"
    machine = {"x64": "x64", "arm64": "arm64", "x86": "x86"}[arch]
    _run(
        ["lld-link", *link, f"/machine:{machine}", "/debug", f"/pdb:{tmp / (name + '.pdb')}", f"/out:{out}", *objs], tmp
    )
    return out


def build_multi(
    tmp: Path,
    name: str,
    arch: str,
    sources: list[tuple[str, str, tuple[str, ...]]],
    link: tuple[str, ...] = ("/dll", "/noentry"),
) -> Path:
    """Compile several C sources (file stem, text, extra clang flags each) and link them into one image with a
    PDB next to it (``name.pdb``); return the image path."""
    require_toolchain()
    tmp.mkdir(parents=True, exist_ok=True)
    objs = []
    for stem, text, flags in sources:
        (tmp / f"{stem}.c").write_text(text)
        obj = tmp / f"{stem}.obj"
        cmd = ["clang", f"--target={TRIPLES[arch]}", "-O1", "-mno-stack-arg-probe", *flags, "-c", f"{stem}.c"]
        _run([*cmd, "-o", str(obj)], tmp)
        objs.append(str(obj))
    out = tmp / f"{name}.dll"
    pdb = f"/pdb:{tmp / (name + '.pdb')}"
    _run(["lld-link", *link, f"/machine:{arch}", "/debug", pdb, f"/out:{out}", *objs], tmp)
    return out


def readobj(path: Path, *flags: str) -> str:
    return _run(["llvm-readobj", *flags, str(path)], path.parent)


@dataclass
class ReadobjImage:
    """What llvm-readobj says about an image."""

    image_base: int
    size_of_image: int
    size_of_headers: int
    machine: int
    sections: list[dict] = field(default_factory=list)
    exports: dict[str, int] = field(default_factory=dict)
    directories: dict[str, tuple[int, int]] = field(default_factory=dict)


def _int(s: str) -> int:
    return int(s, 0)


def describe(path: Path) -> ReadobjImage:
    text = readobj(path, "--file-headers", "--sections", "--coff-exports")
    g = lambda key: _int(re.search(rf"^\s*{key}: (\S+)", text, re.M).group(1))  # noqa: E731
    machine = _int(re.search(r"Machine: \S+ \((0x[0-9A-F]+)\)", text).group(1))
    info = ReadobjImage(g("ImageBase"), g("SizeOfImage"), g("SizeOfHeaders"), machine)
    for m in re.finditer(
        r"Section \{\s*Number: \d+\s*Name: (\S+).*?VirtualSize: (\S+)\s*VirtualAddress: (\S+)\s*"
        r"RawDataSize: (\S+)\s*PointerToRawData: (\S+).*?Characteristics \[ \((\S+)\)",
        text,
        re.S,
    ):
        info.sections.append(
            {
                "name": m.group(1),
                "virtual_size": _int(m.group(2)),
                "rva": _int(m.group(3)),
                "raw_size": _int(m.group(4)),
                "raw_offset": _int(m.group(5)),
                "characteristics": _int(m.group(6)),
            }
        )
    for m in re.finditer(r"Export \{\s*Ordinal: (\d+)\s*Name: (\S*)\s*RVA: (\S+)", text):
        if m.group(2):
            info.exports[m.group(2)] = _int(m.group(3))
    for m in re.finditer(r"^\s*(\w+)RVA: (0x[0-9A-F]+)\s*\n\s*\w+Size: (0x[0-9A-F]+)", text, re.M):
        info.directories[m.group(1)] = (_int(m.group(2)), _int(m.group(3)))
    return info


def unwind_entries(path: Path) -> list[tuple[int, int, int | None]]:
    """(begin rva, end rva, unwind-info rva or None) per RUNTIME_FUNCTION, from ``llvm-readobj --unwind``."""
    text = readobj(path, "--unwind")
    base = describe(path).image_base
    out = []
    for m in re.finditer(
        r"RuntimeFunction \{\s*(?:Function: (?:[^\n]*?\()?(0x[0-9A-F]+)|StartAddress: .*?\((0x[0-9A-F]+)\))"
        r"(.*?)(?=RuntimeFunction \{|\Z)",
        text,
        re.S,
    ):
        begin = _int(m.group(1) or m.group(2)) - base
        body = m.group(3)
        end = re.search(r"EndAddress: .*?\((0x[0-9A-F]+)\)", body)
        ui = re.search(r"(?:UnwindInfoAddress|ExceptionRecord): (?:[^\n]*?\()?(0x[0-9A-F]+)", body)
        flen = re.search(r"FunctionLength: (\d+)", body)
        out.append(
            (
                begin,
                _int(end.group(1)) - base if end else begin + int(flen.group(1)) if flen else None,
                _int(ui.group(1)) - base if ui else None,
            )
        )
    return out


def function_of(info: ReadobjImage, rva: int) -> str | None:
    """The exported function with the greatest start ≤ ``rva`` in an executable section."""
    best = None
    for name, start in info.exports.items():
        if start <= rva and (best is None or start > info.exports[best]):
            best = name
    return best


# ---- execution in unicorn ------------------------------------------------------------------------------------
STACK_LOW = 0x00200000
STACK_SIZE = 0x00200000
SENTINEL = 0x00100000  # the "caller" of the entry point: a mapped page outside every module


@dataclass
class Run:
    """The machine state when the code hit its breakpoint, and the stack pointer at each function's entry."""

    arch: str
    info: ReadobjImage
    regs: dict[str, int]
    entry_sp: dict[str, int]
    memory: object  # the unicorn Uc (reads go through read())

    def read(self, va: int, size: int) -> bytes | None:
        try:
            return bytes(self.memory.mem_read(va, size))
        except Exception:
            return None


@dataclass(frozen=True)
class MovedRun:
    """An x64 :class:`Run` moved into a dump world: registers, stack bytes and the call chain's pcs with every
    word that pointed into the image or the emulator's stack rebased onto the world's image base and stack."""

    registers: dict[str, int]
    stack: bytes
    frames: list[tuple[str, int]]  # (function, pc) innermost first, from the emulator


def move_run(run: Run, chain: tuple[str, ...] | list[str], base: int, stack_va: int) -> MovedRun:
    """Rebase ``run`` (stopped in ``chain[0]``, called from ``chain[-1]``) to an image at ``base`` and a stack whose
    current sp is ``stack_va``. Return addresses are the words each call pushed (at its callee's entry sp)."""
    image_base, size = run.info.image_base, run.info.size_of_image
    rsp = run.regs["rsp"]
    top = max(run.entry_sp.values()) + 8

    def move(v: int) -> int:
        if image_base <= v < image_base + size:
            return v - image_base + base
        if rsp - 0x1000 <= v < top + 0x100:
            return v - rsp + stack_va
        return v

    raw = run.read(rsp, top - rsp)
    assert raw is not None
    words = struct.unpack(f"<{len(raw) // 8}Q", raw)
    frames = [(chain[0], move(run.regs["rip"]))]
    for callee, caller in itertools.pairwise(chain):
        ret = run.read(run.entry_sp[callee], 8)
        assert ret is not None
        frames.append((caller, move(int.from_bytes(ret, "little"))))
    stack = struct.pack(f"<{len(words)}Q", *map(move, words))
    return MovedRun({n: move(v) for n, v in run.regs.items()}, stack, frames)


def _load(path: Path, arch: str):
    """A unicorn CPU with the image laid out at its preferred base as the loader would (headers + each section
    at its RVA, from llvm-readobj's section table), a fresh stack and a sentinel page; (uc, info, stack top)."""
    unicorn = pytest.importorskip("unicorn", reason="unicorn (dev extra) executes the compiled code")
    info = describe(path)
    data = path.read_bytes()
    arch_mode = {
        "x64": (unicorn.UC_ARCH_X86, unicorn.UC_MODE_64),
        "x86": (unicorn.UC_ARCH_X86, unicorn.UC_MODE_32),
        "arm64": (unicorn.UC_ARCH_ARM64, unicorn.UC_MODE_ARM),
    }[arch]
    uc = unicorn.Uc(*arch_mode)
    size = (info.size_of_image + 0xFFF) & ~0xFFF
    uc.mem_map(info.image_base, size)
    uc.mem_write(info.image_base, data[: info.size_of_headers])
    for s in info.sections:
        raw = data[s["raw_offset"] : s["raw_offset"] + min(s["raw_size"], s["virtual_size"] or s["raw_size"])]
        uc.mem_write(info.image_base + s["rva"], raw)
    uc.mem_map(STACK_LOW, STACK_SIZE)
    uc.mem_map(SENTINEL, 0x1000)
    return uc, info, STACK_LOW + STACK_SIZE - 0x100


def run_until_break(path: Path, arch: str, entry: str, arg: int = 3) -> Run:
    """Lay the image out (:func:`_load`), call ``entry(arg)`` on a fresh stack and stop at the first breakpoint."""
    unicorn = pytest.importorskip("unicorn", reason="unicorn (dev extra) executes the compiled code")
    uc, info, top = _load(path, arch)
    size = (info.size_of_image + 0xFFF) & ~0xFFF
    entry_va = info.image_base + info.exports[entry]
    if arch == "x64":
        from unicorn import x86_const as X

        sp = top - 8
        uc.mem_write(sp, SENTINEL.to_bytes(8, "little"))
        uc.reg_write(X.UC_X86_REG_RSP, sp)
        uc.reg_write(X.UC_X86_REG_RCX, arg)
        names = {
            n: getattr(X, f"UC_X86_REG_{n.upper()}")
            for n in (
                "rax",
                "rcx",
                "rdx",
                "rbx",
                "rsp",
                "rbp",
                "rsi",
                "rdi",
                "r8",
                "r9",
                "r10",
                "r11",
                "r12",
                "r13",
                "r14",
                "r15",
                "rip",
            )
        }
        sp_reg = X.UC_X86_REG_RSP
    elif arch == "x86":
        from unicorn import x86_const as X

        sp = top - 8
        uc.mem_write(sp, SENTINEL.to_bytes(4, "little") + arg.to_bytes(4, "little"))
        uc.reg_write(X.UC_X86_REG_ESP, sp)
        names = {
            n: getattr(X, f"UC_X86_REG_{n.upper()}")
            for n in ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "eip")
        }
        sp_reg = X.UC_X86_REG_ESP
    else:
        from unicorn import arm64_const as A

        uc.reg_write(A.UC_ARM64_REG_SP, top)
        uc.reg_write(A.UC_ARM64_REG_X0, arg)
        uc.reg_write(A.UC_ARM64_REG_X29, 0)
        uc.reg_write(A.UC_ARM64_REG_X30, SENTINEL)
        names = {"pc": A.UC_ARM64_REG_PC, "sp": A.UC_ARM64_REG_SP, "fp": A.UC_ARM64_REG_X29, "lr": A.UC_ARM64_REG_X30}
        sp_reg = A.UC_ARM64_REG_SP

    entry_sp: dict[str, int] = {}
    starts = {info.image_base + rva: name for name, rva in info.exports.items()}

    def on_code(mu, address, _size, _user):
        if address in starts:
            entry_sp.setdefault(starts[address], mu.reg_read(sp_reg))

    def on_intr(mu, _intno, _user):
        mu.emu_stop()

    uc.hook_add(unicorn.UC_HOOK_CODE, on_code, begin=info.image_base, end=info.image_base + size - 1)
    uc.hook_add(unicorn.UC_HOOK_INTR, on_intr)
    uc.emu_start(entry_va, SENTINEL, count=100000)
    regs = {n: uc.reg_read(r) for n, r in names.items()}
    return Run(arch, info, regs, entry_sp, uc)


# ---- tracing: a callback before every instruction, with the call stack the emulator observed -----------------
@dataclass
class Activation:
    """A function call the emulator saw begin: its name, the stack pointer and return address at entry (ARM64:
    sp and lr; x86: esp, which points at the return address) and the callee-saved registers at entry."""

    name: str
    sp: int
    ret: int
    saved: dict[str, int]


ARM64_SAVED = (*(f"x{i}" for i in range(19, 29)), "fp", *(f"d{i}" for i in range(8, 16)))
X86_SAVED = ("ebx", "esi", "edi", "ebp")


def trace(path: Path, arch: str, entry: str, on_insn, arg: int = 3, max_insns: int = 200000) -> ReadobjImage:
    """Call ``entry(arg)`` to its return and run ``on_insn(pc, regs, stack, read)`` before every instruction
    in the image. ``stack`` lists the :class:`Activation` records, outermost first, maintained from the
    execution alone: pushed when pc reaches an exported function's first instruction, popped when pc reaches
    the top record's return address with the stack pointer back where the call left it. ARM64 and x86."""
    uc, info, top = _load(path, arch)
    size = (info.size_of_image + 0xFFF) & ~0xFFF
    starts = {info.image_base + rva: name for name, rva in info.exports.items()}
    if arch == "arm64":
        from unicorn import arm64_const as A

        regs_ids = {f"x{i}": getattr(A, f"UC_ARM64_REG_X{i}") for i in range(29)}
        regs_ids.update(fp=A.UC_ARM64_REG_X29, lr=A.UC_ARM64_REG_X30, sp=A.UC_ARM64_REG_SP, pc=A.UC_ARM64_REG_PC)
        regs_ids.update({f"d{i}": getattr(A, f"UC_ARM64_REG_D{i}") for i in range(8, 16)})
        uc.reg_write(A.UC_ARM64_REG_SP, top)
        uc.reg_write(A.UC_ARM64_REG_X0, arg)
        uc.reg_write(A.UC_ARM64_REG_X29, 0)
        uc.reg_write(A.UC_ARM64_REG_X30, SENTINEL)
        for i in range(19, 29):  # distinctive callee-saved values, so a wrong restore shows
            uc.reg_write(regs_ids[f"x{i}"], 0x1900 + i)
        for i in range(8, 16):
            uc.reg_write(regs_ids[f"d{i}"], 0x4000_0000_0000_0000 + i)
        pc_key, sp_key, saved_names, back = "pc", "sp", ARM64_SAVED, 0
    elif arch == "x86":
        from unicorn import x86_const as X

        regs_ids = {n: getattr(X, f"UC_X86_REG_{n.upper()}") for n in ("eax", "ecx", "edx", "ebx", "esp", "ebp")}
        regs_ids.update({n: getattr(X, f"UC_X86_REG_{n.upper()}") for n in ("esi", "edi", "eip")})
        sp = top - 8
        uc.mem_write(sp, SENTINEL.to_bytes(4, "little") + arg.to_bytes(4, "little"))
        uc.reg_write(X.UC_X86_REG_ESP, sp)
        for n, v in (("ebx", 0x1B1B), ("esi", 0x5151), ("edi", 0xD1D1), ("ebp", 0)):
            uc.reg_write(regs_ids[n], v)
        pc_key, sp_key, saved_names, back = "eip", "esp", X86_SAVED, 4
    else:
        raise ValueError(f"trace supports arm64 and x86, not {arch}")
    stack: list[Activation] = []

    def read(va: int, n: int) -> bytes | None:
        try:
            return bytes(uc.mem_read(va, n))
        except Exception:
            return None

    def on_code(mu, address, _size, _user):
        regs = {k: mu.reg_read(r) for k, r in regs_ids.items()}
        # back at the return address with the stack released (a stdcall callee also pops its arguments)
        while stack and address == stack[-1].ret and 0 <= regs[sp_key] - stack[-1].sp - back <= 0x100:
            stack.pop()
        if address in starts:
            sp = regs[sp_key]
            ret = regs["lr"] if arch == "arm64" else int.from_bytes(read(sp, 4), "little")
            stack.append(Activation(starts[address], sp, ret, {k: regs[k] for k in saved_names}))
        on_insn(address, regs, list(stack), read)

    import unicorn

    uc.hook_add(unicorn.UC_HOOK_CODE, on_code, begin=info.image_base, end=info.image_base + size - 1)
    uc.emu_start(info.image_base + info.exports[entry], SENTINEL, count=max_insns)
    if uc.reg_read(regs_ids[pc_key]) != SENTINEL:
        raise AssertionError(f"{entry} did not return within {max_insns} instructions")
    return info


def image_layout(path: Path) -> tuple[ReadobjImage, list[tuple[int, bytes]]]:
    """The image as the loader lays it out: (rva, bytes) for the headers and each section's initialised bytes,
    from llvm-readobj's section table (not from ``dbgauto.pe``), e.g. to place a real image in a synthetic dump."""
    info = describe(path)
    data = path.read_bytes()
    out = [(0, data[: info.size_of_headers])]
    for s in info.sections:
        raw = data[s["raw_offset"] : s["raw_offset"] + min(s["raw_size"], s["virtual_size"] or s["raw_size"])]
        if raw:
            out.append((s["rva"], raw))
    return info, out


def rsds_of(path: Path) -> tuple[str, int, str]:
    """(GUID as 32 upper-case hex digits in symbol-store order, age, PDB file name) from llvm-readobj's view of
    the image's CodeView debug directory entry."""
    import uuid

    text = readobj(path, "--coff-debug-directory")
    guid_bytes = bytes(int(x, 16) for x in re.search(r"PDBGUID: \(([0-9A-F ]+)\)", text).group(1).split())
    age = int(re.search(r"PDBAge: (\d+)", text).group(1))
    pdb = re.search(r"PDBFileName: (\S+)", text).group(1)
    return uuid.UUID(bytes_le=guid_bytes).hex.upper(), age, pdb
