"""dbgauto: automate Windows kernel crash dump conversion and reporting in bulk.

The package is layered, lowest first (declared in :mod:`dbgauto.layers`, drawn in docs/architecture.md):
``util``/``vocab`` → ``kdump``/``pe`` (formats) → ``kernel`` (kernel objects → KernelParts) → ``symbols``/
``debugtext`` → ``unwind`` → ``analysis``/``convert`` → ``engines`` → ``report``/``catalog`` → ``batch`` → ``cli``.
"""

from __future__ import annotations

import logging

from dbgauto.version import __version__

__all__ = ["__version__"]

logging.getLogger(__name__).addHandler(logging.NullHandler())
