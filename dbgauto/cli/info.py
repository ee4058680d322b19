"""``dbgauto info DUMP... [--json]``: a dumpchk-style summary of each kernel dump, or stable JSON.

Exit status: 0 when every dump opened, 1 when some failed (one ``file: reason`` line each on stderr),
2 on usage errors. Start-up stays lean (no jinja2/rich): only click and the format layer are imported.

JSON (``--json``): a list with one object per argument, in order. Addresses, codes, flags and registers are
hex strings (``"0x1ad000"``) so 64-bit values survive any JSON reader; counts and sizes are integers;
absent fields ("PAGE" filler, or not applicable) are ``null``, never numbers. Keys:

``file`` (str), ``error`` (only for files that failed: ``{"code", "message"}``; then no other keys),
``file_size``, ``signature`` ("PAGEDU64"/"PAGEDUMP"), ``is_64bit``, ``dump_type`` (int),
``dump_type_name``, ``dump_type_meaning``, ``variety`` (``{"name", "certain", "explanation"}``),
``machine`` (hex), ``machine_name``, ``major_version`` (hex), ``build`` (int, MinorVersion),
``number_processors`` (int), ``bugcheck_code`` (hex), ``bugcheck_name`` (str|null),
``bugcheck_parameters`` (4 hex), ``directory_table_base``, ``pfn_database``, ``ps_loaded_module_list``,
``ps_active_process_head``, ``kd_debugger_data_block`` (hex), ``pae_enabled`` (bool|null, 32-bit only),
``system_time`` (``{"utc": "YYYY-MM-DDTHH:MM:SS.ffffffZ", "raw": hex}``|null),
``system_uptime`` (``{"raw_100ns": hex, "seconds": float, "text": "D days HH:MM:SS.fff"}``|null),
``comment`` (str|null), ``product_type`` (hex), ``product_type_name``, ``suite_mask``,
``secondary_data_state``, ``writer_status``, ``kd_secondary_version``, ``mini_dump_fields``,
``attributes`` (hex), ``attribute_names`` (list), ``boot_id`` (hex), ``required_dump_space`` (int),
``dump_size`` (int, = file_size), ``pages_present``, ``pages_total`` (int|null),
``physical_memory`` (``{"layout", "run_table_pages", "runs": [[base_pfn hex, count int], ...],
"bitmap": {"signature", "layout", "first_page", "bitmap_bits", "total_present_pages", "dump_options"}|null}``),
``paging`` ("x64"/"x86-pae"/"x86"|null), ``context`` (``{"machine", "context_flags", "registers":
{name: hex}}``|null), ``exception`` (``{"code", "flags", "record", "address", "number_parameters",
"parameters": [hex]}``|null), ``triage`` (small dumps: the triage parser's ``to_dict()``), ``warnings`` (list).
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dbgauto.errors import DbgautoError
from dbgauto.kdump.constants import DumpAttribute, DumpType
from dbgauto.kdump.header import iso_utc
from dbgauto.kdump.reader import KernelDump
from dbgauto.util.codec import hex_or_none as _hex
from dbgauto.vocab.bugchecks import bugcheck_name
from dbgauto.vocab.dumptypes import dump_type_name
from dbgauto.vocab.fmt import uptime_text
from dbgauto.vocab.machines import machine_enum_name
from dbgauto.vocab.products import product_type_label

if TYPE_CHECKING:
    from dbgauto.kdump.triage import TriageDump

# (name, bit) of each DumpAttribute flag, in the enum's order: testing plain ints is ~20x cheaper than IntFlag math
_ATTRIBUTE_BITS = tuple((str(a.name), int(a)) for a in DumpAttribute)


def describe(dump: KernelDump) -> dict[str, Any]:
    """Everything ``info --json`` shows about one open dump, as JSON-ready values (small dumps: ``triage``)."""
    out = describe_header(dump)
    tri = _triage(dump, out["warnings"])
    if tri is not None:
        out["triage"] = tri.to_dict()
    return out


def describe_header(dump: KernelDump) -> dict[str, Any]:
    """The header, variety and physical-memory facts of one open dump, as JSON-ready values."""
    h = dump.header
    s = dump.summary()
    ctx = h.context
    exc = h.exception
    attrs = h.attributes
    return {
        "file": str(dump.path),
        "file_size": dump.file_size,
        "signature": h.signature.decode("ascii", "replace"),
        "is_64bit": dump.is_64bit,
        "dump_type": int(dump.dump_type),
        "dump_type_name": dump_type_name(dump.dump_type),
        "dump_type_meaning": dump.variety.dump_type_meaning,
        "variety": {
            "name": dump.variety.name,
            "certain": dump.variety.certain,
            "explanation": dump.variety.explanation,
        },
        "machine": _hex(h.machine),
        "machine_name": machine_enum_name(h.machine),
        "major_version": _hex(h.major_version),
        "build": h.minor_version,
        "number_processors": h.number_processors,
        "bugcheck_code": _hex(h.bugcheck_code),
        "bugcheck_name": bugcheck_name(h.bugcheck_code),
        "bugcheck_parameters": [_hex(p) for p in h.bugcheck_parameters],
        "directory_table_base": _hex(h.directory_table_base),
        "pfn_database": _hex(h.pfn_database),
        "ps_loaded_module_list": _hex(h.ps_loaded_module_list),
        "ps_active_process_head": _hex(h.ps_active_process_head),
        "kd_debugger_data_block": _hex(h.kd_debugger_data_block),
        "pae_enabled": h.pae_enabled,
        "system_time": None
        if h.system_time is None
        else {"utc": iso_utc(h.system_time), "raw": _hex(h.system_time_raw)},
        "system_uptime": None
        if h.system_uptime_100ns is None
        else {
            "raw_100ns": _hex(h.system_uptime_100ns),
            "seconds": h.system_uptime_100ns / 1e7,
            "text": uptime_text(h.system_uptime_100ns, hour_digits=2),
        },
        "comment": h.comment,
        "product_type": _hex(h.product_type),
        "product_type_name": product_type_label(h.product_type),
        "suite_mask": _hex(h.suite_mask),
        "secondary_data_state": _hex(h.secondary_data_state),
        "writer_status": _hex(h.writer_status),
        "kd_secondary_version": _hex(h.kd_secondary_version),
        "mini_dump_fields": _hex(h.mini_dump_fields),
        "attributes": _hex(attrs),
        "attribute_names": [] if attrs is None else [name for name, bit in _ATTRIBUTE_BITS if attrs & bit],
        "boot_id": _hex(h.boot_id),
        "required_dump_space": h.required_dump_space,
        "dump_size": dump.file_size,
        "pages_present": dump.pages_present,
        "pages_total": dump.pages_total,
        "physical_memory": {
            "layout": s["physical_layout"],
            "run_table_pages": h.physical_memory_pages,
            "runs": None if h.physical_memory_runs is None else [[_hex(b), c] for b, c in h.physical_memory_runs],
            "bitmap": None
            if s["bitmap"] is None
            else {k: (_hex(v) if isinstance(v, int) and k == "first_page" else v) for k, v in s["bitmap"].items()},
        },
        "paging": s["paging"],
        "context": None if ctx is None else ctx.to_dict(),
        "exception": None if exc is None else exc.to_dict(),
        "warnings": list(dump.warnings),
    }


def _triage(dump: KernelDump, warnings: list[str]) -> TriageDump | None:
    """The parsed small dump (its warnings added to ``warnings``); None for other dumps or when its sections are
    unreadable (then a warning says why: the header facts are still worth showing)."""
    if dump.dump_type != DumpType.TRIAGE:
        return None
    try:
        tri = dump.triage
    except DbgautoError as exc:
        warnings.append(f"triage sections not decoded: {exc}")
        return None
    warnings.extend(tri.warnings)
    return tri


def _json_default(v: Any) -> Any:
    if isinstance(v, datetime):
        return iso_utc(v) if v.tzinfo is not None else v.isoformat()
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, (set, frozenset, tuple)):
        return list(v)
    if hasattr(v, "to_dict"):
        return v.to_dict()
    return str(v)


# -- human output ------------------------------------------------------------------------------------


def _line(label: str, value: Any) -> str:
    if value is None:
        value = "(absent)"
    return f"{label:<24}: {value}"


def render_text(d: dict[str, Any], tri: TriageDump | None = None) -> str:
    """The dumpchk-style table for one dump (``d`` from :func:`describe_header`; ``tri`` for a small dump)."""
    v = d["variety"]
    lines = [
        f"{d['file']}",
        _line("Signature", d["signature"]),
        _line("DumpType", f"{d['dump_type']} ({d['dump_type_meaning']})"),
        _line("Variety", v["name"] + ("" if v["certain"] else " (not certain)")),
        _line("  why", v["explanation"]),
        _line("Machine", f"{d['machine']} {d['machine_name'] or ''}".strip() if d["machine"] else None),
        _line("MajorVersion", d["major_version"]),
        _line("Build (MinorVersion)", d["build"]),
        _line("NumberProcessors", d["number_processors"]),
        _line(
            "BugCheckCode", f"{d['bugcheck_code']} {d['bugcheck_name'] or ''}".strip() if d["bugcheck_code"] else None
        ),
        _line("BugCheckParameters", " ".join(p or "(absent)" for p in d["bugcheck_parameters"])),
        _line("DirectoryTableBase", d["directory_table_base"]),
        _line("PfnDataBase", d["pfn_database"]),
        _line("PsLoadedModuleList", d["ps_loaded_module_list"]),
        _line("PsActiveProcessHead", d["ps_active_process_head"]),
        _line("KdDebuggerDataBlock", d["kd_debugger_data_block"]),
    ]
    if d["pae_enabled"] is not None or not d["is_64bit"]:
        lines.append(_line("PaeEnabled", d["pae_enabled"]))
    st, up = d["system_time"], d["system_uptime"]
    lines += [
        _line("SystemTime (UTC)", None if st is None else f"{st['utc']} (raw {st['raw']})"),
        _line("SystemUpTime", None if up is None else f"{up['text']} (raw {up['raw_100ns']})"),
        _line("Comment", d["comment"]),
        _line(
            "ProductType",
            None if d["product_type"] is None else f"{d['product_type']} {d['product_type_name'] or ''}".strip(),
        ),
        _line("SuiteMask", d["suite_mask"]),
        _line("SecondaryDataState", d["secondary_data_state"]),
        _line("WriterStatus", d["writer_status"]),
        _line("KdSecondaryVersion", d["kd_secondary_version"]),
        _line("MiniDumpFields", d["mini_dump_fields"]),
        _line("Attributes", None if d["attributes"] is None else f"{d['attributes']} {' '.join(d['attribute_names'])}"),
        _line("BootId", d["boot_id"]),
        _line("RequiredDumpSpace", None if d["required_dump_space"] is None else f"{d['required_dump_space']:#x}"),
        _line("Dump size", f"{d['dump_size']:#x} ({d['dump_size']:,} bytes)"),
        _line("Pages present / total", _pages(d)),
    ]
    pm = d["physical_memory"]
    if pm["layout"]:
        lines.append(_line("Physical memory", pm["layout"]))
    if pm["runs"] is not None:
        lines.append(_line("Run table", f"{len(pm['runs'])} runs, {pm['run_table_pages']} pages"))
        lines.extend(f"  {'':<22}  base {b} count {c:#x}" for b, c in pm["runs"][:16])
    if pm["bitmap"] is not None:
        b = pm["bitmap"]
        lines.append(
            _line(
                "Bitmap",
                f"{b['signature']} {b['bitmap_bits']:#x} bits, {b['total_present_pages']:#x} present, "
                f"first page at {b['first_page']}",
            )
        )
    lines += _context_lines(d)
    if tri is not None:
        lines += _triage_lines(tri)
    lines += [f"warning: {w}" for w in d["warnings"]]
    return "\n".join(lines)


def _pages(d: dict[str, Any]) -> str | None:
    if d["pages_present"] is None and d["pages_total"] is None:
        return None
    return f"{d['pages_present']} / {d['pages_total']}"


def _context_lines(d: dict[str, Any]) -> list[str]:
    lines = []
    ex = d["exception"]
    if ex is not None:
        params = " ".join(ex["parameters"]) or "-"
        lines.append(
            _line("Exception", f"code {ex['code']} flags {ex['flags']} address {ex['address']} params {params}")
        )
    else:
        lines.append(_line("Exception", None))
    ctx = d["context"]
    if ctx is None:
        lines.append(_line("Context", None))
        return lines
    lines.append(_line("Context", f"machine {ctx['machine']} flags {ctx['context_flags']}"))
    # short (general, segment, debug) registers four to a line; long-named ones (LastBranchToRip ...) one each
    short = [(k, v) for k, v in ctx["registers"].items() if len(k) <= 6]
    long_named = [(k, v) for k, v in ctx["registers"].items() if len(k) > 6]
    lines.extend(
        "  " + "  ".join(f"{k:>6}={v:<18}" for k, v in short[i : i + 4]).rstrip() for i in range(0, len(short), 4)
    )
    lines.extend(f"  {k}={v}" for k, v in long_named)
    return lines


def _triage_lines(tri: TriageDump) -> list[str]:
    """Drivers, unloaded drivers, process/thread and the stack scan of a small dump."""
    lines = ["", "Small memory dump (triage)"]
    lines.append(_line("Process / thread", f"{tri.process_name} pid {tri.pid} tid {tri.tid}"))
    lines.append(_line("Loaded drivers", len(tri.drivers)))
    lines.extend(f"  {d.base:#x} {d.size:>#10x}  {d.name}" for d in tri.drivers)
    lines.append(_line("Unloaded drivers", len(tri.unloaded_drivers)))
    lines.extend(f"  {u.start:#x}-{u.end:#x}  {u.name}" for u in tri.unloaded_drivers)
    hits = tri.stack_scan()
    lines.append(_line("Stack scan", f"{len(hits)} values point into modules"))
    lines.extend(f"  {h.address:#x}  {h.value:#x}  {h.module}+{h.offset:#x}" for h in hits)
    return lines


@click.command("info")
@click.argument("dumps", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print stable JSON (a list, one object per dump).")
def command(dumps: tuple[Path, ...], as_json: bool) -> None:
    """Summarise kernel dumps (dumpchk-style), or print them as JSON."""
    failed = 0
    # JSON is streamed one object at a time (a valid list overall) and indented only for a terminal: the
    # C encoder is used for compact output, which keeps `info --json` over thousands of small dumps fast.
    # The objects are trees built fresh by describe(), never cyclic: the encoder's cycle check is skipped.
    encoder = json.JSONEncoder(indent=2 if sys.stdout.isatty() else None, default=_json_default, check_circular=False)
    write = sys.stdout.write
    first = True

    def emit(obj: dict[str, Any]) -> None:
        nonlocal first
        if as_json:
            write("[\n" if first else ",\n")
            write(encoder.encode(obj))
            first = False

    for path in dumps:
        try:
            with KernelDump.open(path) as dump:
                if as_json:
                    d, text = describe(dump), None
                else:  # the table shows the small dump's sections directly: no to_dict() to build and drop
                    d = describe_header(dump)
                    text = render_text(d, _triage(dump, d["warnings"]))
        except DbgautoError as exc:
            failed += 1
            click.echo(str(exc), err=True)
            emit({"file": str(path), "error": {"code": exc.code, "message": str(exc)}})
            continue
        except Exception as exc:  # a bug must not become a traceback; one line, like any failure
            if os.environ.get("DBGAUTO_DEBUG"):
                raise
            failed += 1
            click.echo(f"{path}: internal error: {type(exc).__name__}: {exc}", err=True)
            emit({"file": str(path), "error": {"code": "internal", "message": str(exc)}})
            continue
        emit(d)
        if text is not None:
            click.echo(text)
            click.echo("")
    if as_json:
        sys.stdout.write("[]\n" if first else "\n]\n")
        sys.stdout.flush()
    sys.exit(1 if failed else 0)
