"""Peak resident memory of the calling process, for benchmarks that measure a fresh child interpreter.

``ru_maxrss`` is the wrong figure in such a child on Linux: the high-water mark survives ``exec``, so a child
started by a parent holding a large synthetic world reports the parent's peak. ``VmHWM`` in
``/proc/self/status`` belongs to the new address space alone. Other systems fall back to ``ru_maxrss``
(``resource`` does not exist on Windows; there the figure is reported as 0).
"""

from __future__ import annotations


def peak_rss_bytes() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            return int(next(line for line in fh if line.startswith("VmHWM")).split()[1]) * 1024
    except (OSError, StopIteration, ValueError):
        pass
    try:
        import resource
    except ImportError:
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
