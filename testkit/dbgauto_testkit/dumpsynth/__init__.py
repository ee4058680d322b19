"""dumpsynth: synthetic Windows kernel crash dumps (large, sparse, with real page tables) for tests and benchmarks.

Independent of dbgauto on purpose (style.md §E, the minidump-synth principle): every offset here is written
from ../shared/spec/dump-format.md and kd-structures.md §8 with ``struct``, never taken from
``dbgauto.kdump``, so a layout mistake in the reader cannot cancel itself out. Generated files are confirmed
by kdmp-parser (64-bit) and volatility3 (32-bit) in tests/synth/test_peers.py.

Public API
==========

Physical memory (``dumpsynth.physmem``)::

    PhysicalMemory(ram_runs: Iterable[tuple[int, int]] | None = None, *, ram_pages: int | None = None)
        .write(pa: int, data: bytes) -> None               # explicit bytes, any alignment; page becomes present
        .add_present(base_pfn: int, count: int = 1) -> None  # present, content zeros, a hole in the file
        .add_present_runs(runs) -> None; .mark_all_ram_present() -> None
        .ram_runs -> list[(base_pfn, count)]; .ram_end_pfn -> int
        .present_runs() -> list[(base_pfn, count)]         # sorted, merged; includes explicit pages
        .present_pages -> int; .explicit_pfns() -> list[int]; .page(pfn) -> bytes | None
        .is_present(pfn) -> bool; .rank(pfn) -> int (present pages below pfn)
        .read(pa: int, size: int) -> bytes                 # what a correct reader must return (zeros elsewhere)
    clustered_present_runs(total_pages: int, fraction: float, seed: int = 0, *, cluster_pages: int = 256,
                           first_pfn: int = 0) -> list[(base_pfn, count)]   # exactly round(fraction*span) pages
    pattern_page(pfn: int, tag: bytes = b"SYNTH") -> bytes  # a recognisable 4 KiB page for stamping
    normalize_runs(runs) -> list[(base_pfn, count)]

Page tables (``dumpsynth.paging``)::

    Arch.X64 | Arch.X86_PAE | Arch.X86          (also accepted as "x64", "x86pae", "x86")
    AddressSpace(arch="x64", *, ram_bytes=64 MiB, ram_runs=None, placement="sequential" | "scattered",
                 seed=0, pdpt_offset=0x20, dtb=None, memory: PhysicalMemory | None = None,
                 nx=False, pat_large=False)
        .dtb -> int            # header value: PML4 (x64) / 32-byte-aligned PDPT at pdpt_offset into its page
                               # (PAE) / PD (x86); with dtb=0x1AD002 the table sits at 0x1AD000, PCID bits kept
        .top_table -> int      # physical address of the top table (dtb without low bits)
        .memory -> PhysicalMemory; .arch -> Arch
        .sibling(*, dtb=None, share_kernel=True) -> AddressSpace   # a process: same RAM + allocator, own tables,
                               # kernel-half top-level entries copied (kernel mappings made so far are shared)
        .map(va, data=b"", *, size=None, page_size=PAGE_4K | PAGE_2M | PAGE_1G | PAGE_4M, pa=None) -> int (pa of va)
        .write_virtual(va, data); .write_physical(pa, data, *, allow_tables=False); .alloc_frames(count=1) -> pa
        .translate(va) -> int | None    # the builder's own record, not a walk
        .read_virtual(va, size) -> bytes; .mappings() -> list[Mapping(va, pa, size)]
    Default RAM layout: runs (0x1, 0x9E) and (0x100, ram_pages - 0x100): two runs, PFN 0 absent.
    Large pages: 2 MiB and 1 GiB on x64, 2 MiB on PAE, 4 MiB on non-PAE; all their frames are present.
    Scattered placement keeps 4 KiB / 2 MiB frames and tables in the lower half of RAM so that the largest
    page size still finds free aligned blocks in the upper half. nx sets bit 63 in leaves (x64/PAE),
    pat_large sets bit 12 in large-page entries: non-address bits a correct walker masks off.
    write_physical refuses to overwrite page-table frames unless allow_tables=True.

Headers (``dumpsynth.header``, ``dumpsynth.context``)::

    HeaderFields(major_version=0xF, minor_version=None (19041/7601), directory_table_base=None (auto),
                 pfn_database, ps_loaded_module_list, ps_active_process_head, kd_debugger_data_block (defaults),
                 machine_image_type=None (auto), number_processors=4, bugcheck_code=0xD1,
                 bugcheck_parameters=None (default), version_user=b"", pae_enabled=None (auto),
                 kd_secondary_version=None, physical_memory_runs=None (auto), physical_memory_pages=None,
                 context={} (dict of registers → CONTEXT built here; bytes = raw CONTEXT; None = filler),
                 exception=ExceptionFields() (or raw bytes / None), comment=None, attributes=None, boot_id=None,
                 dump_type=None (auto), mini_dump_fields=None, secondary_data_state=None, product_type=1,
                 suite_mask=0x110, writer_status=None, required_dump_space=None (auto = file size),
                 system_time=datetime(2026-01-15 09:30:12 UTC) | FILETIME int, system_uptime=36_000_000_000,
                 leave_filler=())      # names forced to the "PAGE" filler
        Any value given is written as is, even when it contradicts the file (a header that lies about its
        DumpType, runs or size is how reader robustness is tested); the data area always follows the writer's
        own layout (``runs`` for type 1, the present pages for bitmaps).
    ExceptionFields(code=0x80000003, flags=0, record=0, address=None (= context pc), parameters=())
    build_header64(fields, **auto) -> bytearray (0x2000); build_header32(fields, **auto) -> bytearray (0x1000)
    amd64_context(registers=None) -> bytes (0x4D0); x86_context(registers=None) -> bytes (0x2CC)
    exception_record64(...) -> bytes (0x98); exception_record32(...) -> bytes (0x50); filetime(datetime) -> int

Writers (``dumpsynth.writer``); ``source`` is an AddressSpace (arch and DTB from it) or a PhysicalMemory
(pass ``arch``); all write a temp file and rename; existing files need ``overwrite=True``::

    write_full_dump(path, source, *, arch=None, fields=None, runs=None (RAM runs), overwrite=False) -> DumpInfo
    write_bitmap_dump(path, source, *, dump_type=6, arch=None, fields=None, signature=None (FDMP for 5, SDMP
                      otherwise), dump_options=None, bitmap_bits=None, align_first_page=False,
                      overwrite=False) -> DumpInfo
    write_dump(path, source, dump_type, **options) -> DumpInfo
    DumpInfo(path, arch, dump_type, header_size, file_size, first_page_offset, stored_pages, runs,
             bitmap_bits, dtb)
        .file_offset(pfn) -> int | None          # O(log runs)
        .pfn_at(index) -> int                    # the index-th stored page, file order
        .sample_stored_pfns(n, seed=0) -> list[int]   # n distinct stored PFNs (benchmarks' random reads)
    bitmap_from_runs(runs, bits) -> bytearray

Example: a 256 GiB Kernel bitmap dump, 25 % present, in about a second::

    mem = PhysicalMemory(ram_pages=(256 << 30) // PAGE_SIZE)
    mem.add_present_runs(clustered_present_runs((256 << 30) // PAGE_SIZE, 0.25, seed=1))
    write_bitmap_dump(out, mem, arch="x64", dump_type=6)
"""

from __future__ import annotations

from .context import amd64_context, exception_record32, exception_record64, x86_context
from .header import ExceptionFields, HeaderFields, build_header32, build_header64, filetime
from .paging import PAGE_1G, PAGE_2M, PAGE_4K, PAGE_4M, AddressSpace, Arch, Mapping
from .physmem import PAGE_SIZE, PhysicalMemory, clustered_present_runs, normalize_runs, pattern_page
from .writer import DumpInfo, bitmap_from_runs, write_bitmap_dump, write_dump, write_full_dump

__all__ = [
    "PAGE_1G",
    "PAGE_2M",
    "PAGE_4K",
    "PAGE_4M",
    "PAGE_SIZE",
    "AddressSpace",
    "Arch",
    "DumpInfo",
    "ExceptionFields",
    "HeaderFields",
    "Mapping",
    "PhysicalMemory",
    "amd64_context",
    "bitmap_from_runs",
    "build_header32",
    "build_header64",
    "clustered_present_runs",
    "exception_record32",
    "exception_record64",
    "filetime",
    "normalize_runs",
    "pattern_page",
    "write_bitmap_dump",
    "write_dump",
    "write_full_dump",
    "x86_context",
]
