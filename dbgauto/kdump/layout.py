"""Re-export of :mod:`dbgauto.util.layout` (the declaration helper moved down so the PE reader can use it too)."""

from dbgauto.util.layout import PAGE_FILL, PAGE_FILL32, PAGE_FILL64, Buffer, Field, Layout, is_page_fill

__all__ = ["PAGE_FILL", "PAGE_FILL32", "PAGE_FILL64", "Buffer", "Field", "Layout", "is_page_fill"]
