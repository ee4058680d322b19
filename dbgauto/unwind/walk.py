"""Walking a stack: the per-architecture method first, the filtered scan when it fails, all bounded.

Each step tries, in order: a trap context the caller supplies for this frame (``context``); the architecture's
method (x64 unwind data, ARM64 .pdata/.xdata, x86 FPO frame data → ``cfi``; else the ARM64/x86 frame-pointer
chain → ``frame-pointer``); a filtered scan (``scan``). A step must move the stack pointer up (unless it
crosses a machine/trap frame onto another stack), never revisit a (pc, sp) pair, and stay under
``max_frames``; bad data ends the walk with a warning.
Nothing here raises on bad input: errors from images or readers become warnings.

x64 trap frames (``ktrap_frame`` = the _KTRAP_FRAME offsets, see :mod:`dbgauto.unwind.trapframe`): a frame whose
function is a trap handler — by name when ``function_name`` names it, else by a UWOP_PUSH_MACHFRAME in its unwind
data — continues in the context its _KTRAP_FRAME saved (``context`` trust, the handler's frame marked
``trap_frame``; WinDbg's "TrapFrame @ ..."), user-mode addresses included. A named handler without a machine
frame in its unwind data is read at rbp - 0x80. The trap frame must lie inside the current stack, and at most
``MAX_TRAP_FRAMES`` are crossed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from dbgauto.pe import ExceptionTable, PeImage
from dbgauto.symbols.fpo import FrameDataTable
from dbgauto.unwind import arm64, framechain, scan, trapframe, x64, x86fpo
from dbgauto.unwind.model import Frame, ImageSource, Memory, Module, ModuleMap, StackWalk, TrapContext, Trust

DEFAULT_STACK_SPAN: Final = 0x100000
MAX_FRAMES: Final = 256
SCAN_WORDS: Final = 1024
SCAN_BUDGET_WORDS: Final = 16384
ARCHES: Final = ("x64", "arm64", "x86")
MAX_TRAP_FRAMES: Final = 16

FrameDataSource = Callable[[Module], FrameDataTable | None]
"""Gives a module's x86 FPO FrameData records (from its PDB, :mod:`dbgauto.symbols.fpo`), or None."""


@dataclass(slots=True)
class _State:
    pc: int
    sp: int
    fp: int | None
    regs: list[int] | None  # x64.REGS order; ARM64: x0..x30, sp; x86: x86fpo.REGS order (eax..edi)
    trust: Trust
    exact: bool = False  # pc is an interrupted instruction (machine frame), not a return address
    trap: bool = False  # this state came from the previous frame's _KTRAP_FRAME
    callee_params: int = 0  # x86 FPO: parameter bytes of the frame just unwound (still on the stack)


def _first(regs: Mapping[str, int], *names: str) -> int | None:
    for n in names:
        v = regs.get(n)
        if v is not None:
            return int(v)
    return None


class _Walker:
    def __init__(
        self,
        arch: str,
        read: Memory,
        mods: ModuleMap,
        low: int,
        high: int,
        exclude: frozenset[int],
        trap_context: TrapContext | None,
        allow_scan: bool,
        max_frames: int,
        ktrap_frame: Mapping[str, int] | None = None,
        function_name: Callable[[int], str | None] | None = None,
        frame_data: FrameDataSource | None = None,
    ) -> None:
        self.arch = arch
        self.frame_data = frame_data
        self.fpo: dict[int, FrameDataTable | None] = {}
        self.ws = 4 if arch == "x86" else 8
        self.read = _safe(read)
        self.mods = mods
        self.low, self.high = low, high
        self.exclude = exclude
        self.trap_context = trap_context
        self.allow_scan = allow_scan
        self.max_frames = max_frames
        self.ktrap = ktrap_frame
        self.function_name = function_name
        self.traps = 0
        self.scan_budget = SCAN_BUDGET_WORDS
        self.tables: dict[int, ExceptionTable | None] = {}
        self.warnings: list[str] = []

    # ---- helpers ----
    def frame(self, index: int, st: _State) -> Frame:
        m = self.mods.find(st.pc)
        return Frame(
            index=index,
            pc=st.pc,
            sp=st.sp,
            trust=st.trust,
            module=m.name if m else None,
            offset=st.pc - m.base if m else None,
            fp=st.fp,
        )

    def image_of(self, va: int) -> tuple[Module | None, PeImage | None]:
        m = self.mods.find(va)
        return m, (self.mods.image(m) if m is not None else None)

    def table(self, m: Module, img: PeImage) -> ExceptionTable | None:
        if m.base not in self.tables:
            try:
                self.tables[m.base] = img.exception_table()
            except Exception as e:  # malformed directory → no table, a warning
                self.warnings.append(f"{m.name}: exception directory unusable ({e})")
                self.tables[m.base] = None
        return self.tables[m.base]

    # ---- per-architecture steps ----
    def step_x64(self, st: _State, innermost: bool) -> _State | None:
        m, img = self.image_of(st.pc)
        if m is None or img is None or st.regs is None:
            return None
        tab = self.table(m, img)
        if tab is None:
            return None
        # a return address points after the call: look up pc-1 so a call ending a function stays in it
        probe = st.pc if innermost or st.exact or st.trust == "context" else st.pc - 1
        fn = tab.lookup(probe - m.base)
        if fn is None:
            res = x64.leaf_step(st.pc, st.regs, self.read)
            if res is None:
                self.warnings.append(f"x64: leaf return address at {st.regs[4]:#x} unreadable")
                return None
        else:
            res, why = x64.step(img, fn, st.pc, st.regs, self.read, innermost=innermost)
            if res is None:
                self.warnings.append(f"x64: {m.name}+{st.pc - m.base:#x}: {why}")
                return None
        if self.ktrap is not None:
            handler = self.handler(st.pc)
            trap_at = None
            if res.machine_frame and res.frame_at is not None and handler is not False:
                trap_at = res.frame_at - self.ktrap["Rip"]
            elif handler and not res.machine_frame and st.regs[5]:
                trap_at = st.regs[5] - trapframe.RBP_OFFSET_IN_HANDLERS
            if trap_at is not None:
                return self.from_trap(trap_at, res.regs)
        if res.machine_frame:
            self.low, self.high = res.regs[4], res.regs[4] + DEFAULT_STACK_SPAN
        return _State(res.rip, res.regs[4], res.regs[5], res.regs, "cfi", exact=res.machine_frame)

    def step_arm64(self, st: _State, innermost: bool) -> _State | None:
        """One step by the image's .pdata/.xdata (``cfi``); None when the module has no image or no table."""
        m, img = self.image_of(st.pc)
        if m is None or img is None or st.regs is None:
            return None
        tab = self.table(m, img)
        if tab is None or not tab.arm64:
            return None
        exact = innermost or st.exact or st.trust == "context"
        # a return address follows its call: look up pc-4 so a call ending a function stays in it
        fn = arm64.lookup(tab, (st.pc if exact else st.pc - 4) - m.base)
        if fn is None:
            if not exact:
                return None
            res = arm64.leaf_step(st.regs)  # no RUNTIME_FUNCTION: a leaf that touched neither sp nor lr
        else:
            got, why = arm64.step(img, fn, st.pc, st.regs, self.read, exact=exact)
            if got is None:
                self.warnings.append(f"arm64: {m.name}+{st.pc - m.base:#x}: {why}")
                return None
            res = got
        if not res.lr_restored and not self._live_lr_ok(res.pc, exact):
            return None
        if res.exact:
            self.low, self.high = res.regs[arm64.SP], res.regs[arm64.SP] + DEFAULT_STACK_SPAN
        return _State(res.pc, res.regs[arm64.SP], res.regs[arm64.FP], res.regs, "cfi", exact=res.exact)

    def fpo_table(self, m: Module) -> FrameDataTable | None:
        if self.frame_data is None:
            return None
        if m.base not in self.fpo:
            try:
                self.fpo[m.base] = self.frame_data(m)
            except Exception as e:  # a damaged PDB is a warning: the EBP chain and the scan remain
                self.warnings.append(f"{m.name}: frame data unusable ({e})")
                self.fpo[m.base] = None
        return self.fpo[m.base]

    def step_x86(self, st: _State, innermost: bool) -> _State | None:
        """One step by FPO frame data (``cfi``), or by emulating the epilog at an interrupted eip."""
        m = self.mods.find(st.pc)
        if m is None or st.regs is None:
            return None
        tab = self.fpo_table(m)
        if tab is None:
            return None
        exact = innermost or st.exact or st.trust == "context"
        fd = tab.lookup((st.pc if exact else st.pc - 1) - m.base)
        if exact:
            img = self.mods.image(m)
            code = img.read_rva(st.pc - m.base, 32) if img is not None else None
            code = code if code is not None else self.read(st.pc, 32)
            epi = x86fpo.epilog_step(bytes(code), st.regs, self.read) if code is not None else None
            if epi is not None:
                params = fd.params_size if fd is not None else 0
                return _State(epi[1], epi[0][4], epi[0][5], epi[0], "cfi", callee_params=params)
        if fd is None:
            return None
        try:
            regs, eip = x86fpo.step(
                fd,
                st.regs,
                self.read,
                callee_params=st.callee_params,
                plausible=self._plausible_return,
                interrupted=exact,
            )
        except x86fpo.FpoError as e:
            self.warnings.append(f"x86: {m.name}+{st.pc - m.base:#x}: frame data: {e}")
            return None
        return _State(eip, regs[4], regs[5], regs, "cfi", callee_params=fd.params_size)

    def _plausible_return(self, va: int) -> bool:
        if self.mods.find(va) is None or self.mods.is_code(va) is False:
            return False
        return scan.follows_call(self.mods, va, "x86") is not False

    def _live_lr_ok(self, lr: int, exact: bool) -> bool:
        """A return address taken from the live lr (nothing saved it) must be a plausible call site."""
        if not exact or lr == 0 or self.mods.find(lr) is None or self.mods.is_code(lr) is False:
            return False
        return scan.follows_call(self.mods, lr, "arm64") is not False

    def handler(self, pc: int) -> bool | None:
        """Whether the function at ``pc`` is a trap handler by its name; None when nothing names it."""
        if self.function_name is None:
            return None
        try:
            name = self.function_name(pc)
        except Exception:  # a symbol source is outside our control: no name
            return None
        return None if name is None else trapframe.is_trap_handler(name)

    def from_trap(self, va: int, unwound: list[int]) -> _State | None:
        """The context a _KTRAP_FRAME at ``va`` saved; non-volatile registers are the handler's unwound ones."""
        assert self.ktrap is not None
        if self.traps >= MAX_TRAP_FRAMES:
            self.warnings.append(f"x64: more than {MAX_TRAP_FRAMES} trap frames; stopping")
            return None
        if not (self.low <= va and va + trapframe.KTRAP_FRAME_X64_SIZE <= self.high):
            self.warnings.append(f"x64: trap frame at {va:#x} is outside the stack [{self.low:#x}, {self.high:#x})")
            return None
        saved = trapframe.read_ktrap_frame(self.read, va, self.ktrap)
        if saved is None:
            self.warnings.append(f"x64: trap frame at {va:#x} is unreadable or implausible")
            return None
        self.traps += 1
        regs = list(unwound)
        for i, name in enumerate(x64.REGS):
            if name in saved:
                regs[i] = saved[name]
        regs[4] = saved["rsp"]
        self.low, self.high = regs[4], regs[4] + DEFAULT_STACK_SPAN
        return _State(saved["rip"], regs[4], regs[5], regs, "context", exact=True, trap=True)

    def step_chain(self, st: _State) -> _State | None:
        if st.fp is None or st.fp == 0:
            return None
        link = framechain.follow(self.read, self.mods, st.fp, self.ws, self.low, self.high)
        if link is None:
            return None
        prev, ret = link
        nfp = prev if framechain.next_fp_ok(prev, st.fp, self.ws, self.low, self.high) else None
        if nfp is None and prev:
            self.warnings.append(f"{self.arch}: frame chain ends at {st.fp:#x} (next {prev:#x} is not above it)")
        regs = None
        if self.arch == "arm64" and st.regs is not None:  # keep a register state for later .pdata steps
            regs = list(st.regs)
            regs[arm64.FP], regs[arm64.LR], regs[arm64.SP] = nfp or 0, ret, st.fp + 16
        elif self.arch == "x86" and st.regs is not None:  # ... and for later FPO steps
            regs = list(st.regs)
            regs[4], regs[5] = st.fp + 8, nfp or 0
        return _State(ret, st.fp + 2 * self.ws, nfp, regs, "frame-pointer")

    def step_scan(self, st: _State, from_sp: int) -> _State | None:
        if not self.allow_scan or self.scan_budget <= 0:
            return None
        words = min(SCAN_WORDS, self.scan_budget)
        self.scan_budget -= words
        for slot, value in scan.scan(
            self.read, self.mods, self.arch, from_sp, words, exclude=self.exclude, high=self.high
        ):
            regs = None
            if st.regs is not None:
                regs = list(st.regs)
                regs[arm64.SP if self.arch == "arm64" else 4] = slot + self.ws
            fp = st.fp if st.fp is not None and st.fp > slot else None
            return _State(value, slot + self.ws, fp, regs, "scan")
        return None

    def arm64_lr(self, st: _State, lr: int | None) -> _State | None:
        """Frame 1 from the context's LR when the innermost function has not saved it in a frame record."""
        if lr is None or lr == 0 or self.mods.is_code(lr) is False or self.mods.find(lr) is None:
            return None
        if st.fp:
            link = framechain.follow(self.read, self.mods, st.fp, 8, self.low, self.high)
            if link is not None and link[1] == lr:
                return None
        m, img = self.image_of(st.pc)
        if m is not None and img is not None and m.contains(lr):
            tab = self.table(m, img)
            fn = tab.lookup(st.pc - m.base) if tab is not None else None
            if fn is not None and fn.contains(lr - m.base):
                return None  # LR points into the innermost function itself: a stale link register
        if scan.follows_call(self.mods, lr, "arm64") is False:
            return None
        return _State(lr, st.sp, st.fp, st.regs, "context")

    # ---- the loop ----
    def walk(self, first: _State, lr: int | None) -> list[Frame]:
        frames = [self.frame(0, first)]
        seen = {(first.pc, first.sp)}
        st = first
        if not self.low <= st.sp < self.high:
            self.warnings.append(f"stack pointer {st.sp:#x} is outside the stack [{self.low:#x}, {self.high:#x})")
            return frames
        while len(frames) < self.max_frames:
            innermost = len(frames) == 1
            nxt: _State | None = None
            tc = self._trap(frames[-1])
            if tc is not None:
                frames[-1] = _with_trap(frames[-1])
                nxt = tc
                self.low, self.high = nxt.sp, nxt.sp + DEFAULT_STACK_SPAN
            elif self.arch == "x64":
                nxt = self.step_x64(st, innermost)
            else:
                if self.arch == "arm64":
                    nxt = self.step_arm64(st, innermost)
                elif self.arch == "x86":
                    nxt = self.step_x86(st, innermost)
                if nxt is None and innermost and self.arch == "arm64":
                    nxt = self.arm64_lr(st, lr)
                if nxt is None:
                    nxt = self.step_chain(st)
            if nxt is None:
                nxt = self.step_scan(st, st.sp)
            if nxt is None and self.traps >= MAX_TRAP_FRAMES:
                break
            if nxt is None or nxt.pc == 0:
                break
            if (nxt.pc, nxt.sp) in seen:
                self.warnings.append(f"{self.arch}: unwinding loops at pc {nxt.pc:#x} sp {nxt.sp:#x}")
                break
            crossed = (nxt.trust == "context" and tc is not None) or nxt.exact
            if not crossed and nxt.sp < st.sp:
                self.warnings.append(f"{self.arch}: stack pointer went down ({st.sp:#x} → {nxt.sp:#x}); stopping")
                break
            if self.mods.find(nxt.pc) is None and nxt.trust != "context":
                break  # a return address outside every known module: the end of what we can attribute
            seen.add((nxt.pc, nxt.sp))
            if nxt.trap:
                frames[-1] = _with_trap(frames[-1])
            frames.append(self.frame(len(frames), nxt))
            st = nxt
        else:
            self.warnings.append(f"{self.arch}: stopped after {self.max_frames} frames")
        return frames

    def _trap(self, f: Frame) -> _State | None:
        if self.trap_context is None:
            return None
        try:
            regs = self.trap_context(f)
        except Exception as e:  # the callback reads a _KTRAP_FRAME that may be damaged
            self.warnings.append(f"trap context for frame {f.index}: {e}")
            return None
        if not regs:
            return None
        st = _initial(self.arch, regs)
        if st is None:
            return None
        st.trust = "context"
        return st


def _with_trap(f: Frame) -> Frame:
    return Frame(f.index, f.pc, f.sp, f.trust, f.module, f.offset, f.fp, True)


def _safe(read: Memory) -> Memory:
    def rd(va: int, size: int):
        if va < 0 or size <= 0 or va + size > 1 << 64:
            return None
        try:
            got = read(va, size)
        except Exception:  # an unreadable address is "no data", never an error for the walker
            return None
        return got if got is not None and len(got) >= size else None

    return rd


def _initial(arch: str, regs: Mapping[str, int]) -> _State | None:
    if arch == "x64":
        pc, sp = _first(regs, "rip"), _first(regs, "rsp")
        if pc is None or sp is None:
            return None
        r = x64.regs_from_mapping(regs)
        return _State(pc, sp, r[5], r, "context")
    if arch == "arm64":
        pc, sp = _first(regs, "pc"), _first(regs, "sp")
        if pc is None or sp is None:
            return None
        return _State(pc, sp, _first(regs, "fp", "x29"), arm64.regs_from_mapping(regs), "context")
    pc, sp = _first(regs, "eip"), _first(regs, "esp")
    if pc is None or sp is None:
        return None
    return _State(pc, sp, _first(regs, "ebp"), x86fpo.regs_from_mapping(regs), "context")


def unwind(
    arch: str,
    regs: Mapping[str, int],
    read: Memory,
    modules: Sequence[Module] | ModuleMap,
    *,
    image_for: ImageSource | None = None,
    stack_limits: tuple[int, int] | None = None,
    trap_context: TrapContext | None = None,
    exclude: Iterable[int] = (),
    allow_scan: bool = True,
    max_frames: int = MAX_FRAMES,
    ktrap_frame: Mapping[str, int] | None = None,
    function_name: Callable[[int], str | None] | None = None,
    frame_data: FrameDataSource | None = None,
) -> StackWalk:
    """Unwind the stack whose innermost registers are ``regs``.

    ``arch``: 'x64' (keys rip, rsp, rbp, rax..r15), 'arm64' (pc, sp, fp|x29, lr|x30) or 'x86' (eip, esp,
    ebp). ``read(va, size)`` serves memory (None = not available). ``modules`` is a list of
    :class:`Module` (or a prepared :class:`ModuleMap`); ``image_for(module)`` gives its
    :class:`~dbgauto.pe.PeImage` (unwind data, section table) or None. ``stack_limits`` = [low, high) of
    the stack (default: [sp, sp + 1 MiB)). ``trap_context(frame)`` may return the registers a trap frame
    saved for that frame; the walk then continues there. ``exclude``: values a scan must never report.
    ``ktrap_frame`` (x64): _KTRAP_FRAME field offsets (:data:`~dbgauto.unwind.trapframe.KTRAP_FRAME_X64` or a
    symbol table's) to continue through kernel trap frames; ``function_name(pc)`` names functions for spotting
    trap handlers (see the module docstring). ``frame_data(module)`` (x86) gives the module's FPO FrameData
    (:func:`dbgauto.symbols.fpo.load_frame_data` on its PDB): frames without EBP frames then unwind by it.
    ARM64 prefers the image's .pdata/.xdata (``cfi``) and falls back to the x29 chain.
    """
    out = StackWalk(arch)
    if arch not in ARCHES:
        out.warnings.append(f"unsupported architecture {arch!r}")
        return out
    st = _initial(arch, regs)
    if st is None:
        out.warnings.append(f"{arch}: the context lacks the pc or sp register")
        return out
    mods = modules if isinstance(modules, ModuleMap) else ModuleMap(list(modules), image_for)
    low, high = stack_limits if stack_limits is not None else (st.sp, st.sp + DEFAULT_STACK_SPAN)
    w = _Walker(
        arch,
        read,
        mods,
        low,
        high,
        frozenset(exclude),
        trap_context,
        allow_scan,
        max(1, max_frames),
        ktrap_frame if arch == "x64" else None,
        function_name,
        frame_data if arch == "x86" else None,
    )
    out.frames = w.walk(st, _first(regs, "lr", "x30") if arch == "arm64" else None)
    out.warnings.extend(w.warnings)
    out.warnings.extend(mods.warnings)
    out.warnings.extend(mods.image_warnings())
    return out
