"""Kernel objects over any dump: virtual memory, KDBG, processors, threads, processes, module lists.

The product is :class:`~dbgauto.kernel.parts.KernelParts`, read once per dump (``open_parts``), from which
conversion writes a small dump and analysis derives facts.
"""
