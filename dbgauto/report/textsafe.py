"""Report-side name for :func:`dbgauto.util.textsafe.visible` (control characters, CR, bidi overrides escaped)."""

from __future__ import annotations

from dbgauto.util.textsafe import visible

__all__ = ["visible"]
