"""Names and tables every layer shares, each written once: bug checks, DumpType meanings, machines, product
types, the Windows inbox-module list, and the text formatters for numbers, addresses and uptimes.

Tier T2: imports only ``dbgauto.errors`` and ``dbgauto.util``, so the format layer, the engines, analysis
and the reports all import it downward. Modules are imported one by one (``dbgauto.vocab.dumptypes``, ...):
this package imports nothing, so ``dbgauto info`` pays only for the tables it uses.
"""
