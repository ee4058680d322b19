"""PE images (format layer): headers, sections, data directories, CodeView RSDS, exception directory, exports
and the version resource, read zero-copy from file bytes, a mapped image or a ``read(va, size)`` callable."""

from dbgauto.pe.debug import CodeView, read_codeview
from dbgauto.pe.exceptions import ExceptionTable, RuntimeFunction
from dbgauto.pe.exports import Export, read_exports
from dbgauto.pe.image import DataDirectory, PeImage, Reader, Section
from dbgauto.pe.version import VersionInfo, parse_version_block, read_version_info

__all__ = [
    "CodeView",
    "DataDirectory",
    "ExceptionTable",
    "Export",
    "PeImage",
    "Reader",
    "RuntimeFunction",
    "Section",
    "VersionInfo",
    "parse_version_block",
    "read_codeview",
    "read_exports",
    "read_version_info",
]
