"""A virtual-memory view of a small memory dump: the few VA ranges the file holds copies of.

A small dump has no physical memory and no page tables; it carries copies of memory at known virtual addresses
(the stack at TopOfStack, the PRCB / thread / process at their VAs, the KDBG at KdDebuggerDataBlock, the data
page and every data block). Reads are served from those, may span several of them, and raise
:class:`PageNotPresentError` for the first absent byte. Data blocks (there are thousands) are found with a sorted
start list and ``bisect``; the handful of single copies are checked first.
"""

from __future__ import annotations

import operator
import os
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from dbgauto.errors import DumpClosedError, PageNotPresentError
from dbgauto.util.frozen import fast_init
from dbgauto.util.layout import Buffer


@fast_init
@dataclass(frozen=True, slots=True)
class Region:
    """``size`` bytes of target VA ``address`` stored at file offset ``offset``; ``label`` says which copy."""

    address: int
    offset: int
    size: int
    label: str

    @property
    def end(self) -> int:
        return self.address + self.size


class VirtualView:
    """Read target virtual memory out of a small dump's copies."""

    def __init__(
        self,
        buffer: Buffer,
        *,
        copies: Sequence[Region],
        columns: tuple[Sequence[int], Sequence[int], Sequence[int]],
        address_mask: int = 0xFFFFFFFFFFFFFFFF,
        path: os.PathLike[str] | str | None = None,
    ) -> None:
        """``copies``: single copies (checked first, in order); ``columns``: the data blocks' addresses, offsets
        and sizes."""
        self._buf = buffer
        self._path = path
        self._mask = address_mask
        self.copies: tuple[Region, ...] = tuple(
            Region(c.address & address_mask, c.offset, c.size, c.label) for c in copies if c.size > 0
        )
        addresses, offsets, sizes = columns
        if address_mask != 0xFFFFFFFFFFFFFFFF:
            addresses = [a & address_mask for a in addresses]
        order = [i for i in sorted(range(len(addresses)), key=addresses.__getitem__) if sizes[i] > 0]
        if order:
            pick = operator.itemgetter(*order)
            starts, offs, lens = (
                list(pick(c)) if len(order) > 1 else [c[order[0]]] for c in (addresses, offsets, sizes)
            )
        else:
            starts, offs, lens = [], [], []
        self._starts: list[int] = starts
        self._ends: list[int] = list(map(operator.add, starts, lens))
        self._offsets: list[int] = offs

    def with_copies(self, copies: Sequence[Region]) -> VirtualView:
        """A view over the same data blocks (index shared, not rebuilt) with ``copies`` checked first."""
        view = VirtualView.__new__(VirtualView)
        view._buf, view._path, view._mask = self._buf, self._path, self._mask
        view.copies = tuple(Region(c.address & self._mask, c.offset, c.size, c.label) for c in copies if c.size > 0)
        view._starts, view._ends, view._offsets = self._starts, self._ends, self._offsets
        return view

    def _locate(self, va: int) -> tuple[int, int] | None:
        """(file offset of ``va``, bytes available from there in the same copy) or None."""
        for c in self.copies:
            if c.address <= va < c.address + c.size:
                return c.offset + (va - c.address), c.address + c.size - va
        i = bisect_right(self._starts, va) - 1
        if i >= 0 and va < self._ends[i]:
            return self._offsets[i] + (va - self._starts[i]), self._ends[i] - va
        return None

    def read(self, va: int, size: int) -> bytes:
        """``size`` bytes at ``va``; PageNotPresentError names the first address no copy holds."""
        if size < 0:
            raise ValueError("negative size")
        try:
            return self._read(va & self._mask, size)
        except ValueError:  # only a released buffer raises it here: the dump was closed
            raise DumpClosedError(self._path) from None

    def _read(self, va: int, size: int) -> bytes:
        first = self._locate(va)
        if first is not None and first[1] >= size:  # the common case: one copy holds it all
            off = first[0]
            return bytes(self._buf[off : off + size])
        parts: list[bytes] = []
        pos, end = va, va + size
        while pos < end:
            hit = self._locate(pos & self._mask)
            if hit is None:
                raise PageNotPresentError(pos & self._mask, physical=False, path=self._path)
            off, avail = hit
            n = min(avail, end - pos)
            parts.append(bytes(self._buf[off : off + n]))
            pos += n
        return b"".join(parts)

    @property
    def block_count(self) -> int:
        return len(self._starts)
