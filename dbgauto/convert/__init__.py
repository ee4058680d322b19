"""Large dump → small memory dump (``.dump /m`` natively); the data-block policy is in :mod:`.policy`.

``convert_dump(src, out, engine="native", overwrite=False) -> ConvertResult`` (docs/architecture.md);
``collect_parts(dump) -> SmallDumpParts`` gathers the parts (also used for facts of large dumps).
"""

from __future__ import annotations

from .collect import DriverInfo, SmallDumpParts, UnloadedInfo, collect_parts
from .write import ConvertResult, convert_dump, default_output, write_small_dump

__all__ = [
    "ConvertResult",
    "DriverInfo",
    "SmallDumpParts",
    "UnloadedInfo",
    "collect_parts",
    "convert_dump",
    "default_output",
    "write_small_dump",
]
