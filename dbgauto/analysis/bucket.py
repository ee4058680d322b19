"""The failure bucket: a stable key that groups identical crashes across machines, like ``FAILURE_BUCKET_ID``.

The rule (also in docs/report-schema.md)::

    bucket_id = NAME "_" [PROCESS "_"] CULPRIT

* ``NAME``: the bug check's reference name (``SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M``), else ``0x`` and the code
  in upper-case hex (``0x1000007E``).
* ``PROCESS``: the process image name, only for process-attributed bug checks (rule ``system-service-process``).
* ``CULPRIT``: ``module!function`` when symbols named the function (``nt!KiSystemServiceExitPico``); else
  ``module+0xRVA`` where RVA is the *start of the function* holding the culprit address, when the module's
  unwind data gives it (``amdppm+0x3310``); else the module name alone (``amdppm``); ``hardware`` /
  ``memory_corruption`` for those classes; ``unknown`` without a culprit.

Module names are the debugger's (file name without extension, ``nt`` for the kernel). Offsets inside a
function and absolute addresses never appear: they change with ASLR and with the instruction that faulted.
Characters outside ``[A-Za-z0-9_.!+-]`` become ``_``.

``failure_class`` is one of :data:`FAILURE_CLASSES`: ``third-party-driver`` or ``windows-component`` (a
module culprit, by :func:`dbgauto.vocab.inbox.is_inbox`), ``process``, ``hardware``, ``memory-corruption``,
``unknown``.
"""

from __future__ import annotations

import re
from typing import Final

from dbgauto.analysis.facts import CulpritFact
from dbgauto.analysis.naming import module_short_name
from dbgauto.vocab.bugchecks import lookup
from dbgauto.vocab.inbox import is_inbox

__all__ = ["FAILURE_CLASSES", "bucket_id", "failure_class"]

FAILURE_CLASSES: Final = (
    "third-party-driver",
    "windows-component",
    "process",
    "hardware",
    "memory-corruption",
    "unknown",
)
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_.!+\-]")


def _clean(text: str) -> str:
    return _UNSAFE.sub("_", text)


def failure_class(culprit: CulpritFact | None) -> str:
    """The class of the failure (module docstring)."""
    if culprit is None:
        return "unknown"
    if culprit.rule == "system-service-process":
        return "process"
    if culprit.rule == "hardware":
        return "hardware"
    if culprit.rule == "memory-corruption":
        return "memory-corruption"
    return "windows-component" if is_inbox(culprit.name) else "third-party-driver"


def bucket_id(bugcheck_code: int | None, culprit: CulpritFact | None, *, function_start: int | None = None) -> str:
    """The bucket key (module docstring). ``function_start``: the culprit function's RVA in its module, when
    unwind data gave it and symbols did not name it."""
    if bugcheck_code is None:
        head = "NO_BUGCHECK"
    else:
        info = lookup(bugcheck_code)
        head = info.name if info is not None else f"0x{bugcheck_code:X}"
    if culprit is None:
        return f"{head}_unknown"
    parts = [head]
    if culprit.rule == "system-service-process":
        parts.append(_clean(culprit.name))
        if culprit.module is None:
            return "_".join(parts)
    if culprit.rule in ("hardware", "memory-corruption"):
        parts.append(culprit.name)
        return "_".join(parts)
    module = culprit.module or module_short_name(culprit.name)
    if culprit.function:
        parts.append(_clean(f"{module}!{culprit.function}"))
    elif function_start is not None:
        parts.append(_clean(f"{module}+{function_start:#x}"))
    else:
        parts.append(_clean(module))
    return "_".join(parts)
