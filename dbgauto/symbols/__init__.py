"""Symbols: symbol path, symbol-server client and store, PDB/ISF/CAB readers, kernel-table identification.

Tier T5: imports only ``dbgauto.errors``, ``dbgauto.util`` and ``dbgauto.kdump`` and takes plain inputs
(bytes, ints, mappings) so the engines, facts and CLI can feed it from any dump reader.
"""
