"""A PE image over file bytes, over an image as the loader mapped it, or over a ``read(va, size)`` callable.

One class serves all three because everything above the headers is addressed by RVA: the only difference is
how an RVA becomes bytes (through the section table for a file; identity for a mapped image; ``base + rva``
for memory). Reads over a buffer are zero-copy ``memoryview`` slices. Headers that do not make sense raise
:class:`~dbgauto.errors.ImageFormatError`; optional parts that are damaged or absent (debug record, version
resource, paged-out memory) come back as ``None`` with a line in :attr:`PeImage.warnings`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from dbgauto.errors import ImageFormatError
from dbgauto.pe import layouts as L
from dbgauto.util.frozen import fast_init
from dbgauto.util.layout import Buffer

Reader = Callable[[int, int], bytes | bytearray | memoryview | None]
"""``read(va, size)``: the bytes at a virtual address, or None when they are not available."""

MAX_HEADER_READ: Final = 0x10000


@fast_init
@dataclass(frozen=True, slots=True)
class Section:
    """One IMAGE_SECTION_HEADER, decoded."""

    name: str
    rva: int
    virtual_size: int
    raw_size: int
    raw_offset: int
    characteristics: int

    @property
    def is_executable(self) -> bool:
        return bool(self.characteristics & (L.SCN_MEM_EXECUTE | L.SCN_CNT_CODE))

    @property
    def span(self) -> int:
        """Bytes the section covers once mapped (VirtualSize, or SizeOfRawData when a linker left it 0)."""
        return self.virtual_size or self.raw_size

    def contains(self, rva: int) -> bool:
        return self.rva <= rva < self.rva + self.span


@fast_init
@dataclass(frozen=True, slots=True)
class DataDirectory:
    rva: int
    size: int


class PeImage:
    """Headers, sections and data directories of one image; parts below are read on demand by RVA."""

    def __init__(
        self,
        name: str,
        rva_reader: Callable[[int, int], Buffer | None],
        *,
        base: int | None,
        file_buffer: Buffer | None = None,
    ) -> None:
        self.name = name
        self._rd = rva_reader
        self._file = file_buffer
        self.warnings: list[str] = []
        self._parse_headers()
        self.base: int = self.image_base if base is None else base

    # ---- constructors -------------------------------------------------------------------------------------
    @classmethod
    def from_bytes(
        cls, data: Buffer, *, name: str = "<bytes>", mapped: bool = False, base: int | None = None
    ) -> PeImage:
        """An image file's bytes (``mapped=False``) or an image as laid out in memory (``mapped=True``)."""
        view = memoryview(data).cast("B") if not isinstance(data, memoryview) else data.cast("B")
        if mapped:
            return cls(name, lambda rva, size: _slice(view, rva, size), base=base)
        # The RVA → file-offset map needs the section table this constructor is about to parse: the reader
        # consults the image's sections once they exist (headers are read before, at file offset = RVA).
        img = cls.__new__(cls)
        cls.__init__(img, name, lambda rva, size: img._file_read(view, rva, size), base=base, file_buffer=view)
        return img

    @classmethod
    def from_memory(cls, read: Reader, base: int, *, name: str = "<memory>") -> PeImage:
        """An image resident at ``base`` in some address space, read through ``read(va, size)``."""

        def rd(rva: int, size: int) -> Buffer | None:
            if rva < 0 or size < 0:
                return None
            try:
                got = read(base + rva, size)
            except Exception:  # a reader that raises is treated as "not available": memory may be paged out
                return None
            if got is None or len(got) < size:
                return None
            return got

        return cls(name, rd, base=base)

    # ---- header parsing -----------------------------------------------------------------------------------
    def _need(self, rva: int, size: int, what: str) -> Buffer:
        got = self._rd(rva, size)
        if got is None:
            raise ImageFormatError(self.name, f"{what} at rva {rva:#x} (+{size:#x}) is not readable")
        return got

    def _parse_headers(self) -> None:
        dos = L.DOS_HEADER.unpack(self._need(0, L.DOS_HEADER.size, "IMAGE_DOS_HEADER"))
        if dos["e_magic"] != L.MZ:
            raise ImageFormatError(self.name, "no MZ signature", offset=0)
        lfanew = dos["e_lfanew"]
        if not 0x40 <= lfanew <= MAX_HEADER_READ:
            raise ImageFormatError(self.name, f"e_lfanew {lfanew:#x} is implausible", offset=0x3C)
        nt = self._need(lfanew, 4 + L.FILE_HEADER.size, "IMAGE_NT_HEADERS")
        if bytes(nt[:4]) != L.PE_SIGNATURE:
            raise ImageFormatError(self.name, "no PE signature", offset=lfanew)
        fh = L.FILE_HEADER.unpack(nt, 4)
        self.machine: int = fh["machine"]
        self.timestamp: int = fh["time_date_stamp"]
        self.characteristics: int = fh["characteristics"]
        nsec = fh["number_of_sections"]
        if nsec > L.MAX_SECTIONS:
            raise ImageFormatError(
                self.name, f"{nsec} sections (the loader allows {L.MAX_SECTIONS})", offset=lfanew + 6
            )
        opt_off = lfanew + 4 + L.FILE_HEADER.size
        opt_size = fh["size_of_optional_header"]
        magic_raw = self._need(opt_off, 2, "optional header")
        magic = int.from_bytes(bytes(magic_raw[:2]), "little")
        if magic == L.MAGIC_PE32_PLUS:
            layout = L.OPTIONAL_HEADER64
        elif magic == L.MAGIC_PE32:
            layout = L.OPTIONAL_HEADER32
        else:
            raise ImageFormatError(
                self.name, f"optional header magic {magic:#x} is neither PE32 nor PE32+", offset=opt_off
            )
        if opt_size < layout.size:
            raise ImageFormatError(
                self.name, f"optional header is {opt_size:#x} bytes, needs {layout.size:#x}", offset=lfanew + 0x14
            )
        opt_raw = self._need(opt_off, opt_size, "optional header")
        opt = layout.unpack(opt_raw)
        self.is_pe32_plus: bool = magic == L.MAGIC_PE32_PLUS
        self.image_base: int = opt["image_base"]
        self.size_of_image: int = opt["size_of_image"]
        self.size_of_headers: int = opt["size_of_headers"]
        self.checksum: int = opt["checksum"]
        self.entry_point: int = opt["address_of_entry_point"]
        self.subsystem: int = opt["subsystem"]
        self.dll_characteristics: int = opt["dll_characteristics"]
        self.os_version: tuple[int, int] = (opt["major_os_version"], opt["minor_os_version"])
        ndirs = min(
            opt["number_of_rva_and_sizes"], L.MAX_DIRECTORIES, (opt_size - layout.size) // L.DATA_DIRECTORY.size
        )
        self.directories: tuple[DataDirectory, ...] = tuple(
            DataDirectory(**L.DATA_DIRECTORY.unpack(opt_raw, layout.size + i * L.DATA_DIRECTORY.size))
            for i in range(ndirs)
        )
        sec_off = opt_off + opt_size
        sec_raw = self._need(sec_off, nsec * L.SECTION_HEADER.size, "section table")
        sections = []
        for i in range(nsec):
            s = L.SECTION_HEADER.unpack(sec_raw, i * L.SECTION_HEADER.size)
            sections.append(
                Section(
                    name=bytes(s["name"]).rstrip(b"\0").decode("ascii", "replace"),
                    rva=s["virtual_address"],
                    virtual_size=s["virtual_size"],
                    raw_size=s["size_of_raw_data"],
                    raw_offset=s["pointer_to_raw_data"],
                    characteristics=s["characteristics"],
                )
            )
        self.sections: tuple[Section, ...] = tuple(sections)

    # ---- RVA access ---------------------------------------------------------------------------------------
    def _file_read(self, view: memoryview, rva: int, size: int) -> Buffer | None:
        if rva < 0 or size < 0:
            return None
        secs: tuple[Section, ...] = getattr(self, "sections", ())
        for s in secs:
            if s.contains(rva):
                delta = rva - s.rva
                if rva + size > s.rva + max(s.span, s.raw_size):
                    return None
                if delta + size <= s.raw_size:
                    return _slice(view, s.raw_offset + delta, size)
                if delta >= s.raw_size:
                    return bytes(size)  # zero-filled tail of the section (uninitialised data)
                head = _slice(view, s.raw_offset + delta, s.raw_size - delta)
                return None if head is None else bytes(head) + bytes(size - len(head))
        limit = self.size_of_headers if hasattr(self, "size_of_headers") else len(view)
        if rva + size <= max(limit, 0x40):
            return _slice(view, rva, size)
        return None

    def read_rva(self, rva: int, size: int) -> Buffer | None:
        """``size`` bytes at ``rva``, or None when they are outside the image or not available."""
        if size < 0 or rva < 0 or (self.size_of_image and rva + size > max(self.size_of_image, self.size_of_headers)):
            return None
        return self._rd(rva, size)

    def directory(self, index: int) -> DataDirectory | None:
        """A data directory, or None when it is absent (index past NumberOfRvaAndSizes, or rva/size zero)."""
        if index >= len(self.directories):
            return None
        d = self.directories[index]
        return d if d.rva and d.size else None

    def section_for(self, rva: int) -> Section | None:
        for s in self.sections:
            if s.contains(rva):
                return s
        return None

    def is_executable_rva(self, rva: int) -> bool:
        """True when ``rva`` falls in a section marked executable (or holding code)."""
        s = self.section_for(rva)
        return s is not None and s.is_executable

    def executable_ranges(self) -> list[tuple[int, int]]:
        """[start, end) RVA ranges of the executable sections."""
        return [(s.rva, s.rva + s.span) for s in self.sections if s.is_executable]

    @property
    def arch(self) -> str:
        """'x64', 'arm64', 'x86' or 'machine-0x....'."""
        return {L.MACHINE_AMD64: "x64", L.MACHINE_ARM64: "arm64", L.MACHINE_I386: "x86"}.get(
            self.machine, f"machine-{self.machine:#06x}"
        )

    def __repr__(self) -> str:
        return f"PeImage({self.name!r}, {self.arch}, base={self.base:#x}, size={self.size_of_image:#x})"

    # ---- optional parts (see the sibling modules) ----------------------------------------------------------
    def codeview(self):  # -> CodeView | None
        from dbgauto.pe.debug import read_codeview

        return read_codeview(self)

    def version_info(self):  # -> VersionInfo | None
        from dbgauto.pe.version import read_version_info

        return read_version_info(self)

    def exports(self):  # -> list[Export]
        from dbgauto.pe.exports import read_exports

        return read_exports(self)

    def exception_table(self):  # -> ExceptionTable | None
        from dbgauto.pe.exceptions import ExceptionTable

        return ExceptionTable.of(self)


def _slice(view: memoryview, off: int, size: int) -> memoryview | None:
    if off < 0 or size < 0 or off + size > len(view):
        return None
    return view[off : off + size]


def read_cstring(img: PeImage, rva: int, limit: int = 512) -> str | None:
    """A NUL-terminated ASCII string at ``rva`` (at most ``limit`` bytes; None when unreadable)."""
    out = bytearray()
    step = 64
    while len(out) < limit:
        chunk = img.read_rva(rva + len(out), step)
        if chunk is None:
            chunk = img.read_rva(rva + len(out), 1)
            if chunk is None:
                return None
        b = bytes(chunk)
        nul = b.find(b"\0")
        if nul >= 0:
            out += b[:nul]
            return out.decode("utf-8", "replace")
        out += b
    return None
