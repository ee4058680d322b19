"""``dbgauto info DUMP... [--json]``: a dumpchk-style summary of each kernel dump, or stable JSON.

Exit status: 0 when every dump opened, 1 when some failed (one ``file: reason`` line each on stderr),
2 on usage errors. Start-up stays lean (no jinja2/rich): only click and the format layer are imported.

JSON (``--json``): a list with one object per argument, in order: the ``DumpSummary`` model
(``dbgauto.analysis.summary``) written by ``dbgauto.util.codec`` with every key present (``null`` when absent),
plus ``triage`` for small dumps; failures are ``{"file", "error": {"code", "message"}}``. The schema
(``dbgauto.dumpsummary/1``) is documented in ``docs/report-schema.md``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dbgauto.analysis.summary import DumpSummary, summarize
from dbgauto.errors import DbgautoError
from dbgauto.kdump.constants import DumpType
from dbgauto.kdump.reader import KernelDump
from dbgauto.kdump.triage_json import triage_to_dict
from dbgauto.util.codec import hex_or_none as _hex
from dbgauto.util.codec import iso_z, to_json
from dbgauto.util.textsafe import terminal, terminal_line

if TYPE_CHECKING:
    from dbgauto.kdump.triage import TriageDump


def describe(dump: KernelDump) -> dict[str, Any]:
    """Everything ``info --json`` shows about one open dump, as JSON-ready values (small dumps: ``triage``)."""
    summary, warnings = summarize(dump), []  # the header first: parsing the triage sections may add warnings
    tri = _triage(dump, warnings)
    out = describe_header(summary, warnings)
    if tri is not None:
        out["triage"] = triage_to_dict(tri, kernel=_kernel_view(dump))
    return out


def describe_header(summary: DumpSummary, extra_warnings: Sequence[str] = ()) -> dict[str, Any]:
    """The :class:`DumpSummary` as ``info --json`` writes it: every key present, ``null`` when absent."""
    out = to_json(summary, omit_absent=False)
    out["warnings"] = [*out["warnings"], *extra_warnings]
    return out


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
        return iso_z(v)
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


def render_text(
    s: DumpSummary,
    tri: TriageDump | None = None,
    extra_warnings: Sequence[str] = (),
    kern: dict[str, Any] | None = None,
) -> str:
    """The dumpchk-style table for one dump (``tri`` for a small dump)."""
    v = s.variety
    h = _hex
    lines = [
        s.file,
        _line("Signature", s.signature),
        _line("DumpType", f"{s.dump_type} ({s.dump_type_meaning})"),
        _line("Variety", v.name + ("" if v.certain else " (not certain)")),
        _line("  why", v.explanation),
        _line("Machine", f"{h(s.machine)} {s.machine_name or ''}".strip() if s.machine is not None else None),
        _line("MajorVersion", h(s.major_version)),
        _line("Build (MinorVersion)", s.build),
        _line("NumberProcessors", s.number_processors),
        _line(
            "BugCheckCode",
            f"{h(s.bugcheck_code)} {s.bugcheck_name or ''}".strip() if s.bugcheck_code is not None else None,
        ),
        _line("BugCheckParameters", " ".join(h(p) or "(absent)" for p in s.bugcheck_parameters)),
        _line("DirectoryTableBase", h(s.directory_table_base)),
        _line("PfnDataBase", h(s.pfn_database)),
        _line("PsLoadedModuleList", h(s.ps_loaded_module_list)),
        _line("PsActiveProcessHead", h(s.ps_active_process_head)),
        _line("KdDebuggerDataBlock", h(s.kd_debugger_data_block)),
    ]
    if s.pae_enabled is not None or not s.is_64bit:
        lines.append(_line("PaeEnabled", s.pae_enabled))
    st, up = s.system_time, s.system_uptime
    lines += [
        _line("SystemTime (UTC)", None if st is None else f"{iso_z(st.utc)} (raw {h(st.raw)})"),
        _line("SystemUpTime", None if up is None else f"{up.text} (raw {h(up.raw_100ns)})"),
        _line("Comment", s.comment),
        _line(
            "ProductType",
            None if s.product_type is None else f"{h(s.product_type)} {s.product_type_name or ''}".strip(),
        ),
        _line("SuiteMask", h(s.suite_mask)),
        _line("SecondaryDataState", h(s.secondary_data_state)),
        _line("WriterStatus", h(s.writer_status)),
        _line("KdSecondaryVersion", h(s.kd_secondary_version)),
        _line("MiniDumpFields", h(s.mini_dump_fields)),
        _line("Attributes", None if s.attributes is None else f"{h(s.attributes)} {' '.join(s.attribute_names)}"),
        _line("BootId", h(s.boot_id)),
        _line("RequiredDumpSpace", h(s.required_dump_space)),
        _line("Dump size", f"{s.dump_size:#x} ({s.dump_size:,} bytes)"),
        _line("Pages present / total", _pages(s)),
    ]
    pm = s.physical_memory
    if pm.layout:
        lines.append(_line("Physical memory", pm.layout))
    if pm.runs is not None:
        lines.append(_line("Run table", f"{len(pm.runs)} runs, {pm.run_table_pages} pages"))
        lines.extend(f"  {'':<22}  base {h(b)} count {c:#x}" for b, c in pm.runs[:16])
    if pm.bitmap is not None:
        b = pm.bitmap
        lines.append(
            _line(
                "Bitmap",
                f"{b.signature} {b.bitmap_bits:#x} bits, {b.total_present_pages:#x} present, "
                f"first page at {h(b.first_page)}",
            )
        )
    lines += _context_lines(s)
    if tri is not None:
        lines += _triage_lines(tri, kern or {"process_name": None, "pid": None, "tid": None, "stack_scan": []})
    lines += [f"warning: {w}" for w in (*s.warnings, *extra_warnings)]
    return "\n".join(lines)


def _pages(s: DumpSummary) -> str | None:
    if s.pages_present is None and s.pages_total is None:
        return None
    return f"{s.pages_present} / {s.pages_total}"


def _context_lines(s: DumpSummary) -> list[str]:
    lines = []
    ex = s.exception
    if ex is not None:
        params = " ".join(f"{p:#x}" for p in ex.parameters) or "-"
        lines.append(
            _line("Exception", f"code {ex.code:#x} flags {ex.flags:#x} address {ex.address:#x} params {params}")
        )
    else:
        lines.append(_line("Exception", None))
    ctx = s.context
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


def _kernel_view(dump: KernelDump) -> dict[str, Any]:
    """Addresses, identity and stack scan the kernel layer establishes from a small dump's copies."""
    from dbgauto.kernel.smalldump import kernel_view, small_dump_parts

    return kernel_view(small_dump_parts(dump))


def _triage_lines(tri: TriageDump, kern: dict[str, Any]) -> list[str]:
    """Drivers, unloaded drivers, process/thread and the stack scan of a small dump."""
    lines = ["", "Small memory dump (triage)"]
    lines.append(_line("Process / thread", _identity(kern)))
    lines.append(_line("Loaded drivers", len(tri.drivers)))
    lines.extend(f"  {d.base:#x} {d.size:>#10x}  {d.name}" for d in tri.drivers)
    lines.append(_line("Unloaded drivers", len(tri.unloaded_drivers)))
    lines.extend(f"  {u.start:#x}-{u.end:#x}  {u.name}" for u in tri.unloaded_drivers)
    hits = kern["stack_scan"]
    lines.append(_line("Stack scan", f"{len(hits)} values point into modules"))
    lines.extend(f"  {h.address:#x}  {h.value:#x}  {h.module}+{h.offset:#x}" for h in hits[:MAX_SCAN_ROWS])
    if len(hits) > MAX_SCAN_ROWS:
        lines.append(f"  ... {len(hits) - MAX_SCAN_ROWS} more not shown (info --json lists them all)")
    return lines


MAX_SCAN_ROWS = 64
"""Stack-scan rows the table shows: a SizeOfCallStack covering the whole file would otherwise print megabytes."""


def _identity(kern: dict[str, Any]) -> str:
    """``System pid 0x4 tid 0x10``, with "unknown" for what the dump does not say (never "None")."""
    name = kern.get("process_name") or "unknown process"
    pid, tid = kern.get("pid"), kern.get("tid")
    return f"{name} pid {'unknown' if pid is None else pid} tid {'unknown' if tid is None else tid}"


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
                    summary, warnings = summarize(dump), []
                    tri = _triage(dump, warnings)
                    d, text = {}, render_text(summary, tri, warnings, _kernel_view(dump) if tri is not None else None)
        except DbgautoError as exc:
            failed += 1
            click.echo(terminal_line(str(exc)), err=True)
            emit({"file": str(path), "error": {"code": exc.code, "message": str(exc)}})
            continue
        except Exception as exc:  # a bug must not become a traceback; one line, like any failure
            if os.environ.get("DBGAUTO_DEBUG"):
                raise
            failed += 1
            click.echo(terminal_line(f"{path}: internal error: {type(exc).__name__}: {exc}"), err=True)
            click.echo("This is a bug in dbgauto; please report it (rerun with DBGAUTO_DEBUG=1 for details).", err=True)
            emit({"file": str(path), "error": {"code": "internal", "message": str(exc)}})
            continue
        emit(d)
        if text is not None:
            click.echo(terminal(text))
            click.echo("")
    if as_json:
        sys.stdout.write("[]\n" if first else "\n]\n")
        sys.stdout.flush()
    sys.exit(1 if failed else 0)
