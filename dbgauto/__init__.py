"""dbgauto: automate Windows kernel crash dump conversion and reporting in bulk.

The package is layered: ``kdump`` (the dump formats, pure functions over bytes) → ``engines`` (native,
cdb/kd, DbgEng) → ``analysis`` (facts and debugger-output parsers) → ``report`` / ``batch`` / ``cli``.
"""

from __future__ import annotations

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
