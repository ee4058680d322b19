"""SymbolContext: the symbols of one dump, built once from the resolved symbol path and the dump's kernel inputs.

Everything above the symbol layer (facts, the native engine's ``k``/``ln``/``x``/``dt``) asks this one object,
so a dump's kernel table is identified once and never used unless identified. The ways, tried in order:

1. ``rsds``: the kernel image's header is in the dump's memory (large dumps); its RSDS record names the PDB,
   found among the ISF tables of the path's local stores or as a PDB through the symbol path;
2. ``image-by-timestamp``: the kernel image is obtainable by TimeDateStamp + SizeOfImage (what any driver
   list gives) from a local store or, when the path names one, a symbol server; its RSDS record then names the PDB;
3. ``kdbg-match``: offline, no image: the KDBG's absolute addresses minus KernBase against every candidate ISF
   table in the path's local stores, plain directories and dbgauto's cache (:func:`dbgauto.symbols.identify.by_kdbg`).

One bad symbol file never fails a dump: it is set aside with a warning naming it and the reason, and the dump
is analysed without it. Nothing here touches the network unless the path names a server.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import json
import ntpath
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from dbgauto.errors import DbgautoError, SymbolError
from dbgauto.symbols.cache import CONVERTED_DIR, cache_entry
from dbgauto.symbols.fpo import FrameDataTable, load_frame_data
from dbgauto.symbols.identify import KDBG_GLOBALS, Identification, by_kdbg, by_rsds, kdbg_addresses
from dbgauto.symbols.isf import find_isf_files, load_isf
from dbgauto.symbols.naming import format_hit
from dbgauto.symbols.objects import Identity, process_identity
from dbgauto.symbols.pdb import load_pdb
from dbgauto.symbols.server import SymbolFinder
from dbgauto.symbols.store import SymbolKey, image_key, pdb_key
from dbgauto.symbols.sympath import ResolvedSymbolPath, local_dir, resolve_symbol_path
from dbgauto.symbols.table import KIND_DATA, SymbolHit, SymbolTable, TypeInfo
from dbgauto.util.atomic import atomic_write_text
from dbgauto.util.frozen import fast_init
from dbgauto.util.memo import remember
from dbgauto.vocab.modules import KERNEL_IMAGES, module_short_name

if TYPE_CHECKING:
    from dbgauto.kernel.parts import KernelParts, VirtualReader
    from dbgauto.pe.image import PeImage

__all__ = [
    "KERNEL_IMAGES",
    "KERNEL_PDBS",
    "DumpModule",
    "KernelInputs",
    "SymbolContext",
    "module_short_name",
]

KERNEL_PDBS: Final = frozenset({"ntkrnlmp.pdb", "ntoskrnl.pdb", "ntkrnlpa.pdb", "ntkrpamp.pdb", "ntkrla57.pdb"})
MAX_CANDIDATES: Final = 512  # ISF files considered for the KDBG match (a library of every build is ~200)
MAX_NAMES: Final = 2000  # rows ``x`` prints
_MEMO_LIMIT: Final = 64
_memo: dict[tuple[str, int, int], SymbolTable] = {}  # loaded tables, per process (a batch worker sees many dumps)
_MAX_SIGNATURE_DIRS: Final = 4096
# How long a process trusts the stores' signature before walking their folders again. The walk costs about
# 70 ms on a symbol cache of 1,500 modules (measured here), far more than a small dump's whole analysis; a
# batch worker checks at most this often, so a file added to a store by hand is seen within seconds, and a
# file this process downloads is seen at once (it clears the signature).
STORE_RECHECK_SECONDS: float = 2.0
_signatures: dict[tuple[str, ...], tuple[float, Any]] = {}
# per process: (candidate roots, cache) -> (folders signature, fingerprints, files set aside with their error)
_missing_memo: dict[tuple[str, str, bool], tuple[Any, set[SymbolKey]]] = {}
_candidates_memo: dict[tuple[tuple[str, ...], str], tuple[Any, list[SymbolTable], list[tuple[Path, Exception]]]] = {}
_fpo_memo: dict[tuple[str, int, int], FrameDataTable] = {}  # x86 FrameData per PDB file, per process
MAX_FRAME_DATA_MODULES: Final = 1024  # modules whose frame data one context remembers


@fast_init
@dataclass(frozen=True, slots=True)
class DumpModule:
    """A loaded module as the dump's driver list gives it."""

    name: str  # image file name or NT path
    base: int
    size: int
    timestamp: int | None = None

    @property
    def short(self) -> str:
        return module_short_name(self.name)

    @property
    def image_name(self) -> str:
        return ntpath.basename(self.name)


@dataclass(frozen=True)
class KernelInputs:
    """What identification and naming need from a dump (any reader can fill it; :meth:`from_parts` does)."""

    kernel_base: int | None
    kdbg_fields: Mapping[str, int] = field(default_factory=dict)
    kdbg_address: int | None = None  # the KDBG's own address (the header's KdDebuggerDataBlock)
    drivers: Sequence[DumpModule] = ()
    pointer_size: int = 8
    memory: VirtualReader | None = None

    @classmethod
    def from_parts(cls, parts: KernelParts) -> KernelInputs:
        kdbg_va = parts.kdbg.va if parts.kdbg is not None and parts.kdbg.va else parts.header.kd_debugger_data_block
        return cls(
            kernel_base=parts.kernel_base,
            kdbg_fields=dict(parts.kdbg_fields),
            kdbg_address=kdbg_va,
            drivers=tuple(
                DumpModule(d.name or d.base_name, d.base, d.size, d.timestamp) for d in parts.drivers if d.size
            ),
            pointer_size=parts.pointer_size,
            memory=parts.memory,
        )

    @property
    def kernel(self) -> DumpModule | None:
        """nt's entry: the module at KernBase, else the first kernel image in the list."""
        for d in self.drivers:
            if self.kernel_base is not None and d.base == self.kernel_base:
                return d
        return next((d for d in self.drivers if d.image_name.lower() in KERNEL_IMAGES), None)


def _candidate_files(resolved: ResolvedSymbolPath) -> Iterator[Path]:
    """ISF files in the path's local stores, plain directories and caches, then dbgauto's cache (no network)."""
    roots = _candidate_roots(resolved)
    seen: set[Path] = set()
    for root in roots:
        if not root.exists():
            continue
        for p in find_isf_files(root, skip=resolved.cache_dir / CONVERTED_DIR):
            parent = p.parent.name.lower()
            if parent.endswith(".pdb") and parent not in KERNEL_PDBS:
                continue  # another module's table in a store layout
            key = p.resolve()
            if key in seen:
                continue
            seen.add(key)
            yield p
            if len(seen) >= MAX_CANDIDATES:
                return


def _candidate_roots(resolved: ResolvedSymbolPath) -> list[Path]:
    roots: list[Path] = []
    for e in resolved.path.elements:
        for st in [e.cache, *e.stores] if e.cache is not None else list(e.stores):
            d = resolved.cache_dir if st == "" else local_dir(st) if st is not None else None
            if d is not None:
                roots.append(d)
    roots.append(resolved.cache_dir / "isf")
    return list(dict.fromkeys(roots))


def _stores_signature(roots: Sequence[Path]) -> Any:
    """:func:`_folders_signature` of ``roots``, walked at most every :data:`STORE_RECHECK_SECONDS`."""
    key = tuple(str(r) for r in roots)
    now = time.monotonic()
    got = _signatures.get(key)
    if got is not None and now - got[0] < STORE_RECHECK_SECONDS:
        return got[1]
    signature = _folders_signature(roots)
    remember(_signatures, key, (now, signature), _MEMO_LIMIT)
    return signature


def _folders_signature(roots: Sequence[Path]) -> tuple[tuple[str, int, int], ...]:
    """Every folder under the candidate roots with its modification time and entry count (bounded walk, folders
    only): a file added, removed or renamed (atomic writes rename) changes its folder's time, and on file systems
    with coarse times the count still changes on an add or a removal, so a per-process candidate list stays
    valid while the signature is unchanged."""
    out: list[tuple[str, int, int]] = []
    todo = list(roots)
    while todo and len(out) < _MAX_SIGNATURE_DIRS:
        d = todo.pop()
        try:
            mtime = d.stat().st_mtime_ns
            with os.scandir(d) as it:
                entries = list(it)
            todo.extend(Path(e.path) for e in entries if e.is_dir(follow_symlinks=True))
            out.append((str(d), mtime, len(entries)))
        except OSError:
            out.append((str(d), -1, -1))
    return tuple(sorted(out))


def _known_missing(key: tuple[str, str, bool], signature: Any) -> set[SymbolKey]:
    """The keys found absent along one symbol path by this process, kept while its stores' signature holds (a
    file added by hand or by another process is seen by the next dump)."""
    memo = _missing_memo.get(key)
    if memo is None or memo[0] != signature:
        memo = remember(_missing_memo, key, (signature, set()), _MEMO_LIMIT)
    return memo[1]


T = TypeVar("T")


def _per_file_version(memo: dict[Any, T], path: Path, make: Callable[[], T]) -> T:
    """``make()`` once per process per version (resolved path, size, mtime) of the file at ``path``."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    got = memo.get(key)
    return got if got is not None else remember(memo, key, make(), _MEMO_LIMIT)


def _load(path: Path, cache_dir: Path, loader: Callable[[Path, Path], SymbolTable]) -> SymbolTable:
    return _per_file_version(_memo, path, lambda: loader(path, cache_dir))


def _load_fpo(path: Path) -> FrameDataTable:
    """The FrameData of the PDB at ``path``, read once per process per file version."""
    return _per_file_version(_fpo_memo, path, lambda: load_frame_data(path))


@dataclass(frozen=True, slots=True)
class PdbLookup:
    """What the symbol path gave for one RSDS key: the matching table, or the file found and why it was refused
    (``refused`` None and ``path`` None: nothing found under the key)."""

    table: SymbolTable | None
    path: Path | None = None
    refused: str | None = None

    def describe(self, pdb_name: str, key: str) -> str:
        if self.refused is not None:
            return f"PDB {self.path or ntpath.basename(pdb_name)} refused: {self.refused}"
        return f"PDB {ntpath.basename(pdb_name)} {key} not found"


def fetch_matching_pdb(finder: SymbolFinder, cache_dir: Path, pdb_name: str, guid: str, age: int) -> PdbLookup:
    """The PDB the symbol path holds under an RSDS record's key, loaded, used only when its own GUID/age (PDB
    info stream) are the record's; a file that is unreadable or of another build is refused, saying so."""
    try:
        key = pdb_key(ntpath.basename(pdb_name), guid, age)
    except SymbolError as e:
        return PdbLookup(None, None, str(e))
    path = finder.find(key)
    if path is None:
        return PdbLookup(None)
    try:
        table = _load(path, cache_dir, load_pdb)
    except (SymbolError, OSError) as e:
        return PdbLookup(None, path, f"unreadable ({e.reason if isinstance(e, SymbolError) else e})")
    want = f"{guid.replace('-', '').upper()}{age:X}"
    if table.pdb_id != want:
        return PdbLookup(None, path, f"GUID/age mismatch (the file is {table.pdb_id}, the image names {want})")
    return PdbLookup(table, path)


def _is_pdb_file(source: str | None) -> bool:
    return bool(source) and Path(str(source)).suffix.lower() == ".pdb"


def _fingerprint(path: Path, cache_dir: Path) -> SymbolTable:
    """A candidate's identity and KDBG-global RVAs only, as a tiny table: the KDBG match reads these (a small
    JSON file beside the converted table) instead of loading every candidate's 40,000 names."""
    entry = cache_entry(path, cache_dir).with_suffix(".kdbg")
    doc: dict[str, Any] | None = None
    try:
        doc = json.loads(entry.read_text())
    except (OSError, ValueError):
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("rvas"), dict):
        t = _load(path, cache_dir, load_isf)
        doc = {"module": t.module, "guid": t.guid, "age": t.age, "rvas": {n: t.rva(n) for n in KDBG_GLOBALS}}
        with contextlib.suppress(OSError):  # a read-only cache still answers, only slower next time
            atomic_write_text(entry, json.dumps(doc), overwrite=True)
    try:
        rows = [(str(n), int(r), 0, KIND_DATA) for n, r in doc["rvas"].items() if r is not None]
        return SymbolTable(module=str(doc["module"]), guid=doc["guid"], age=doc["age"], machine=None,
                           symbols=rows, source=str(path))  # fmt: skip
    except (TypeError, ValueError, KeyError) as e:
        raise SymbolError(entry, f"KDBG fingerprint unreadable: {e}") from None


class SymbolContext:
    """The symbols of one dump: the identified kernel table (or why there is none) and the module list.

    Implements the naming protocol of the analysis layer: :meth:`name` answers ``(module, function or None,
    offset)`` for any address inside a loaded module (offset from the function when named, else from the
    module's base), None outside every module."""

    def __init__(
        self,
        inputs: KernelInputs,
        resolved: ResolvedSymbolPath,
        *,
        identification: Identification | None = None,
        reason: str | None = None,
        warnings: Sequence[str] = (),
        code_ranges: Sequence[tuple[int, int]] | None = None,
        finder: SymbolFinder | None = None,
    ) -> None:
        self.inputs = inputs
        self.resolved = resolved
        self.identification = identification
        self.reason = reason
        self.warnings = list(warnings)
        self.code_ranges = code_ranges
        self.finder = finder
        self._spans: tuple[list[int], list[DumpModule]] | None = None  # module_at's index, built on first use
        self._kernel: DumpModule | bool | None = False  # inputs.kernel, looked up once (False: not yet)
        self._frame_data: dict[int, FrameDataTable | None] = {}

    # --- building -------------------------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        inputs: KernelInputs,
        resolved: ResolvedSymbolPath | None = None,
        *,
        network: bool | None = None,
    ) -> SymbolContext:
        """Identify the kernel's table for ``inputs`` along ``resolved`` (default: ``--symbols``-less resolution
        from the environment). ``network``: None = only when the path names a server. Never raises for bad
        symbol files or servers: those become :attr:`warnings`."""
        resolved = resolved or resolve_symbol_path()
        allow = resolved.path.uses_network if network is None else network and resolved.path.uses_network
        roots = _candidate_roots(resolved)
        signature = _stores_signature(roots)
        missing = _known_missing((resolved.path.text, str(resolved.cache_dir), allow), signature)
        finder = SymbolFinder(
            resolved.path,
            cache_dir=resolved.cache_dir,
            allow_network=allow,
            missing=missing,
            on_stored=_signatures.clear,  # a file this process stored is seen by its next dump
        )
        b = _Builder(inputs, resolved, finder, roots=roots, signature=signature)
        try:
            ident, reason = b.identify()
        except (DbgautoError, OSError) as e:  # anything unforeseen in a symbol source: the dump goes on without
            ident, reason = None, f"identification failed: {e}"
            b.warnings.append(f"symbols: {reason}")
        warnings = [*resolved.path.warnings, *b.warnings, *(f"symbols: {e}" for e in finder.stats.errors)]
        return cls(
            inputs,
            resolved,
            identification=ident,
            reason=reason,
            warnings=list(dict.fromkeys(warnings)),
            code_ranges=b.code_ranges,
            finder=finder,
        )

    @classmethod
    def for_parts(
        cls, parts: KernelParts, symbol_path: str | None = None, *, env: Mapping[str, str] | None = None
    ) -> SymbolContext:
        """The context of a dump read into :class:`KernelParts`; ``symbol_path`` as ``--symbols`` gives it."""
        return cls.build(KernelInputs.from_parts(parts), resolve_symbol_path(symbol_path, env))

    # --- what was identified --------------------------------------------------------------------------------

    @property
    def table(self) -> SymbolTable | None:
        return self.identification.table if self.identification is not None else None

    @property
    def method(self) -> str | None:
        """``rsds``, ``image-by-timestamp`` or ``kdbg-match``; None when no table was identified."""
        return self.identification.method if self.identification is not None else None

    def describe(self) -> str:
        """One line: which table and how, or why none."""
        t = self.table
        if t is None:
            return f"no symbols: {self.reason or 'no kernel table identified'}"
        return f"nt: {t.module} {t.pdb_id} (identified by {self.method})"

    def record(self) -> dict[str, Any]:
        """What the facts keep (``x_symbols``): the table's PDB id and method, or the reason there is none."""
        t = self.table
        return {
            "path": self.resolved.path.text,
            "path_source": self.resolved.source,
            "network": self.resolved.path.uses_network,
            "table": t.pdb_id if t is not None else None,
            "module": t.module if t is not None else None,
            "method": self.method,
            "reason": None if t is not None else self.reason,
        }

    # --- names ----------------------------------------------------------------------------------------------

    def module_at(self, address: int) -> DumpModule | None:
        """The first listed module holding ``address`` (a binary search over the bases when no two overlap)."""
        if self._spans is None:
            mods = sorted(self.inputs.drivers, key=lambda d: d.base)
            disjoint = all(a.base + a.size <= b.base for a, b in itertools.pairwise(mods))
            self._spans = ([d.base for d in mods], mods) if disjoint else ([], [])
        bases, mods = self._spans
        if not mods:  # overlapping entries (a damaged list): the list's own order decides, as a debugger's would
            return next((d for d in self.inputs.drivers if d.base <= address < d.base + d.size), None)
        i = bisect.bisect_right(bases, address) - 1
        if i >= 0 and address < mods[i].base + mods[i].size:
            return mods[i]
        return None

    def _is_kernel(self, m: DumpModule) -> bool:
        if self._kernel is False:
            self._kernel = self.inputs.kernel
        k = self._kernel
        return k is not None and m.base == k.base

    def name(self, address: int) -> tuple[str, str | None, int] | None:
        """(module, function or None, offset) of a code address; None when no loaded module holds it.

        A data symbol never names an address here (frames are code); without a function the offset is from
        the module's base."""
        m = self.module_at(address)
        if m is None:
            return None
        rva = address - m.base
        hit = self._function(m, rva)
        if hit is None:
            return m.short, None, rva
        return m.short, hit.name, hit.offset

    def _function(self, m: DumpModule, rva: int) -> SymbolHit | None:
        t = self.table
        if t is None or not self._is_kernel(m):
            return None
        return t.function_at(rva, code_ranges=self.code_ranges)

    def code_name(self, address: int) -> str | None:
        """``nt!Function+0xoff`` / ``module+0xoff``; None outside every module."""
        got = self.name(address)
        if got is None:
            return None
        module, function, offset = got
        if function is None:
            return f"{module}+{offset:#x}"
        return f"{module}!{function}+{offset:#x}" if offset else f"{module}!{function}"

    def nearest_name(self, address: int) -> str | None:
        """``ln``: the function holding the address, else the nearest preceding symbol of any kind."""
        m = self.module_at(address)
        if m is None:
            return None
        rva = address - m.base
        hit = self._function(m, rva)
        if hit is None and self.table is not None and self._is_kernel(m):
            hit = self.table.nearest(rva)
        return format_hit(m.short, hit, rva)

    def lookup(self, pattern: str) -> list[tuple[str, int]]:
        """``x module!Pattern``: (``nt!Name``, absolute address) for the kernel table's matching names."""
        module, bang, name_pattern = pattern.partition("!")
        if not bang:
            module, name_pattern = "nt", pattern
        k = self.inputs.kernel
        t = self.table
        if t is None or k is None or module.lower() != "nt":
            return []
        return [(f"nt!{n}", k.base + rva) for n, rva in t.names(name_pattern)[:MAX_NAMES]]

    def address_of(self, symbol: str) -> int | None:
        """The absolute address of ``nt!Name`` (or ``Name``)."""
        module, bang, name = symbol.partition("!")
        if not bang:
            module, name = "nt", symbol
        k, t = self.inputs.kernel, self.table
        if t is None or k is None or module.lower() != "nt":
            return None
        rva = t.rva(name)
        return None if rva is None else k.base + rva

    def type(self, name: str) -> TypeInfo | None:
        """A structure of the kernel table (``_EPROCESS``; ``nt!`` prefix accepted)."""
        t = self.table
        if t is None:
            return None
        return t.type(name.split("!", 1)[1] if "!" in name else name)

    def read(self, address: int, size: int) -> bytes | None:
        mem = self.inputs.memory
        return mem.read(address, size) if mem is not None else None

    # --- images of loaded modules ------------------------------------------------------------------------

    def image(self, module: DumpModule | int) -> PeImage | None:
        """A loaded module's image from the symbol path's stores and servers, laid at the module's base.

        Small dumps hold no images; WinDbg fetches ``name.sys/<TIMESTAMP><SIZEOFIMAGE>/name.sys`` by what the
        driver list gives, and so does this (their .pdata/.xdata and code then serve the unwinder). ``module``:
        a driver-list entry, or any address inside one. Memoised per module; None when the entry has no
        TimeDateStamp, the path has no such file, or the file found is not that image (not a PE, or another
        TimeDateStamp/SizeOfImage: set aside with a warning). Never raises; no network unless the path names a
        server (the finder built with the context decides)."""
        m = self.module_at(module) if isinstance(module, int) else module
        if m is None:
            return None
        memo: dict[tuple[int, str], PeImage | None] = self.__dict__.setdefault("_image_memo", {})
        key = (m.base, m.image_name.lower())
        if key not in memo:
            memo[key] = None  # a re-entrant ask while fetching gets "none", never a second fetch
            try:
                memo[key] = self._image_from_path(m)
            except (DbgautoError, OSError) as e:  # a symbol source is outside our control: no image
                self.warnings.append(f"symbols: {m.image_name}: image unavailable ({e})")
        return memo[key]

    def _image_from_path(self, m: DumpModule) -> PeImage | None:
        from dbgauto.pe.image import PeImage

        if not m.timestamp or not m.size:
            return None
        try:
            key = image_key(m.image_name, m.timestamp, m.size)
        except SymbolError:
            return None  # a name or id no store could file: nothing to ask for
        if self.finder is None:
            path = self.resolved.path
            self.finder = SymbolFinder(path, cache_dir=self.resolved.cache_dir, allow_network=path.uses_network)
        seen = len(self.finder.stats.errors)
        try:
            found = self.finder.find(key)
        finally:
            self.warnings.extend(f"symbols: {e}" for e in self.finder.stats.errors[seen:])
        if found is None:
            return None
        aside = f"; {found} is not used (the dump is analysed without it)"
        try:
            img = PeImage.from_bytes(found.read_bytes(), name=str(found), base=m.base)
        except (DbgautoError, OSError) as e:
            text = str(e) if isinstance(e, DbgautoError) else f"{found}: {e}"
            self.warnings.append(f"symbols: {text}{aside}")
            return None
        if (img.timestamp, img.size_of_image) != (m.timestamp, m.size):
            self.warnings.append(
                f"symbols: {found}: TimeDateStamp/SizeOfImage {img.timestamp:#010x}/{img.size_of_image:#x} are not "
                f"the loaded {m.image_name}'s {m.timestamp:#010x}/{m.size:#x}{aside}"
            )
            return None
        return img

    def identity(self, process_bytes: bytes | None, thread_bytes: bytes | None, pointer_size: int) -> Identity | None:
        """(image name, pid, tid) from the table's ``_EPROCESS``/``_ETHREAD`` offsets; None without a table."""
        t = self.table
        if t is None or process_bytes is None or thread_bytes is None:
            return None
        return process_identity(t, process_bytes, thread_bytes, pointer_size)

    # --- x86 frame data ---------------------------------------------------------------------------------------

    def frame_data(self, module: Any) -> FrameDataTable | None:
        """The FPO FrameData of ``module`` (anything with ``base``, e.g. the unwinder's Module), for x86 walks.

        The kernel's comes from its identified table's PDB (when the table was read from a PDB file); any module
        whose image is resident in the dump names its PDB by the RSDS record in its header, found along the
        symbol path as the kernel's is, and used only when its GUID/age are the record's. Memoised per module;
        never raises: a bad or mismatched PDB is set aside with a warning and the module has no frame data."""
        base = int(getattr(module, "base", -1))
        if base in self._frame_data:
            return self._frame_data[base]
        try:
            got = self._find_frame_data(base)
        except (DbgautoError, OSError, ValueError) as e:
            got = None
            text = str(e) if isinstance(e, SymbolError) else f"{getattr(module, 'name', hex(base))}: {e}"
            self._warn(f"symbols: frame data: {text}; the dump is analysed without it")
        if len(self._frame_data) < MAX_FRAME_DATA_MODULES:
            self._frame_data[base] = got
        return got

    def _warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    def _find_frame_data(self, base: int) -> FrameDataTable | None:
        m = self.module_at(base)
        if m is None or m.base != base:
            return None
        t = self.table
        if self._is_kernel(m) and t is not None and _is_pdb_file(t.source):
            return _load_fpo(Path(t.source))
        mem = self.inputs.memory
        if mem is None or self.finder is None or mem.read(base, 2) != b"MZ":
            return None  # the image is not resident (small dumps; paged out)
        from dbgauto.pe.debug import read_codeview
        from dbgauto.pe.image import PeImage

        img = PeImage.from_memory(mem.read, base, name=f"{m.image_name} (in the dump)")
        cv = read_codeview(img)
        if cv is None:
            return None
        found = fetch_matching_pdb(self.finder, self.resolved.cache_dir, cv.pdb_name, cv.guid.replace("-", ""), cv.age)
        if found.table is None or found.path is None:
            if found.refused is not None:
                self._warn(f"symbols: {m.short}: {found.describe(cv.pdb_name, '')}; no frame data from it")
            return None
        return _load_fpo(found.path)


class _Builder:
    """One identification run: candidate tables, tried the three ways, with warnings for what was set aside."""

    def __init__(
        self,
        inputs: KernelInputs,
        resolved: ResolvedSymbolPath,
        finder: SymbolFinder,
        *,
        roots: list[Path] | None = None,
        signature: Any = None,
    ) -> None:
        self.inputs = inputs
        self.roots = roots if roots is not None else _candidate_roots(resolved)
        self.signature = signature  # of self.roots (taken on first use when not given)
        self.resolved = resolved
        self.finder = finder
        self.warnings: list[str] = []
        self.code_ranges: list[tuple[int, int]] | None = None
        self._candidates: list[SymbolTable] | None = None

    def _set_aside(self, path: Path | str, e: Exception) -> None:
        text = str(e) if isinstance(e, SymbolError) else f"{path}: {e}"
        self.warnings.append(f"symbols: {text}; the dump is analysed without it")

    def candidates(self) -> list[SymbolTable]:
        """Every candidate ISF table as a fingerprint (identity + KDBG-global RVAs; ``source`` is its file).

        Listed once per process while the candidate folders are unchanged (a batch worker sees many dumps:
        walking the stores and reading every fingerprint again per dump cost more than the rest of the
        identification); the files set aside are reported again for every dump."""
        if self._candidates is None:
            roots = self.roots
            key = (tuple(str(r) for r in roots), str(self.resolved.cache_dir))
            if self.signature is None:
                self.signature = _stores_signature(roots)
            signature = self.signature
            memo = _candidates_memo.get(key)
            if memo is None or memo[0] != signature:
                out: list[SymbolTable] = []
                aside: list[tuple[Path, Exception]] = []
                for p in _candidate_files(self.resolved):
                    try:
                        out.append(_fingerprint(p, self.resolved.cache_dir))
                    except (SymbolError, OSError) as e:
                        aside.append((p, e))
                memo = remember(_candidates_memo, key, (signature, out, aside), _MEMO_LIMIT)
            for p, e in memo[2]:
                self._set_aside(p, e)
            self._candidates = list(memo[1])
        return self._candidates

    def full(self, ident: Identification) -> Identification | None:
        """The identified fingerprint's whole table (loaded now, once per process)."""
        p = Path(ident.table.source)
        try:
            table = _load(p, self.resolved.cache_dir, load_isf)
        except (SymbolError, OSError) as e:
            self._set_aside(p, e)
            return None
        return Identification(table, ident.method, ident.evidence, ident.rejected)

    def identify(self) -> tuple[Identification | None, str]:
        reasons: list[str] = []
        k = self.inputs.kernel
        base = self.inputs.kernel_base or (k.base if k is not None else None)
        if base is None:
            return None, "the dump names no kernel base"
        # 1. RSDS of the image in the dump's memory
        img = self._image_in_memory(base)
        if img is not None:
            got = self._by_codeview(img, via_image=False, reasons=reasons)
            if got is not None:
                return got, ""
        # 2. the image by timestamp + size from a store or server
        if k is not None and k.timestamp and k.size:
            img = self._image_from_store(k)
            if img is not None:
                got = self._by_codeview(img, via_image=True, reasons=reasons)
                if got is not None:
                    return got, ""
        # 3. the KDBG's addresses against every candidate ISF table
        addresses = kdbg_addresses(self.inputs.kdbg_fields, self.inputs.kdbg_address)
        cands = self.candidates()
        if not cands:
            reasons.append(f"no kernel symbol table found along the symbol path ({self.resolved.path.text or 'empty'})")
            return None, "; ".join(reasons)
        ident, why = by_kdbg(base, addresses, cands)
        if ident is not None:
            ident = self.full(ident)
            if ident is not None:
                return ident, ""
            why = ["the matching table could not be loaded"]
        reasons.append(f"KDBG match over {len(cands)} table(s): {why[0] if why else 'no match'}")
        return None, "; ".join(reasons)

    def _image_in_memory(self, base: int) -> Any:
        mem = self.inputs.memory
        if mem is None:
            return None
        from dbgauto.pe.image import PeImage

        mem.read(base, 2)  # a closed dump raises here (DumpClosedError) rather than pass for one without the image
        try:
            return PeImage.from_memory(mem.read, base, name="nt (in the dump)")
        except DbgautoError:
            return None  # header not in the dump (small dumps): the other ways remain

    def _image_from_store(self, k: DumpModule) -> Any:
        from dbgauto.pe.image import PeImage

        try:
            key = image_key(k.image_name, k.timestamp or 0, k.size)
        except SymbolError:
            return None
        path = self.finder.find(key)
        if path is None:
            return None
        try:
            return PeImage.from_bytes(path.read_bytes(), name=str(path))
        except (DbgautoError, OSError) as e:
            self._set_aside(path, e)
            return None

    def _by_codeview(self, img: Any, *, via_image: bool, reasons: list[str]) -> Identification | None:
        from dbgauto.pe.debug import read_codeview

        cv = read_codeview(img)
        if cv is None:
            reasons.append(f"{img.name}: no RSDS record")
            return None
        execs = img.executable_ranges()
        guid = cv.guid.replace("-", "")
        got = by_rsds(guid, cv.age, self.candidates(), via_image=via_image)
        if got is not None:
            got = self.full(got)
        refused: str | None = None
        if got is None:
            got, refused = self._pdb_by_key(cv.pdb_name, guid, cv.age, via_image)
        if got is None:
            reasons.append(f"{img.name}: {refused or PdbLookup(None).describe(cv.pdb_name, cv.symbol_key)}")
            return None
        self.code_ranges = list(execs) if execs else None
        return got

    def _pdb_by_key(
        self, pdb_name: str, guid: str, age: int, via_image: bool
    ) -> tuple[Identification | None, str | None]:
        """(the identification, None) or (None, why the PDB found under the key was refused, or None)."""
        found = fetch_matching_pdb(self.finder, self.resolved.cache_dir, pdb_name, guid, age)
        if found.table is None:
            if found.refused is None:
                return None, None
            why = found.describe(pdb_name, "")
            self.warnings.append(f"symbols: {why}; the dump is analysed without it")
            return None, why
        return by_rsds(guid, age, [found.table], via_image=via_image), None
