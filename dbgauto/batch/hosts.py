"""Which machine a dump came from, read from the folder layout under its source.

A fleet share is laid out per machine (``\\\\share\\crashes\\PC042\\Minidump\\012345-01.dmp``). The pattern
(``--host-from``) is matched against the dump's path relative to the source folder it was found under,
separator ``/``: ``{host}`` captures one folder name, ``*`` matches one name, ``**`` any number of folders.
The default takes the first folder under the source; a dump directly in the source has no host.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from dbgauto.errors import DbgautoError

__all__ = ["DEFAULT_HOST_PATTERN", "HostPattern"]

DEFAULT_HOST_PATTERN = "{host}/**"


class HostPattern:
    """A compiled ``--host-from`` pattern; :meth:`host_of` gives a dump's host (or None)."""

    def __init__(self, pattern: str = DEFAULT_HOST_PATTERN) -> None:
        parts = [p for p in pattern.replace("\\", "/").split("/") if p]
        if pattern.count("{host}") != 1 or not parts:
            raise DbgautoError(f"--host-from {pattern!r}: the pattern must contain {{host}} exactly once")
        rx = ""
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "**":
                rx += ".+" if last else "(?:[^/]+/)*"
                continue
            piece = re.escape(part).replace(r"\{host\}", "(?P<host>[^/]+)").replace(r"\*", "[^/]*")
            rx += piece if last else piece + "/"
        self.pattern = pattern
        self._rx = re.compile(rx + "$", re.IGNORECASE)  # Windows folder names ignore case

    def host_of(self, path: Path, sources: Sequence[Path]) -> str | None:
        """The host of ``path`` found under one of ``sources`` (absolute, resolved); None when none matches."""
        for root in sources:
            try:
                rel = path.relative_to(root).as_posix()
            except ValueError:
                continue
            m = self._rx.match(rel)
            if m:
                return m.group("host")
        return None
