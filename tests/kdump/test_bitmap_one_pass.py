"""The bitmap is counted and rank-indexed in one pass: the index equals the one built block by block with
int.bit_count (an independent count), and the total equals popcount, for sizes that end mid-byte/mid-block."""

from __future__ import annotations

import random

from dbgauto.kdump.physmem import RANK_BLOCK_BYTES, BitmapMap, count_and_index


def test_one_pass_index_equals_blockwise_counts() -> None:
    rng = random.Random(11)
    for nbytes, tail in ((1, 3), (RANK_BLOCK_BYTES, 0), (RANK_BLOCK_BYTES * 5 + 17, 5), ((1 << 20) + 4099, 1)):
        data = bytes(rng.getrandbits(8) for _ in range(nbytes))
        bits = nbytes * 8 - tail
        total, index = count_and_index(memoryview(data), bits)
        expected_total = int.from_bytes(data, "little") & ((1 << bits) - 1)
        assert total == expected_total.bit_count()
        running, want = 0, []
        for start in range(0, nbytes, RANK_BLOCK_BYTES):
            want.append(running)
            running += int.from_bytes(data[start : start + RANK_BLOCK_BYTES], "little").bit_count()
        assert list(index) == want
        lazy = BitmapMap("t", memoryview(data), bits, 0, total)
        eager = BitmapMap("t", memoryview(data), bits, 0, total, index)
        for pfn in rng.sample(range(bits), min(bits, 300)):
            assert eager.lookup(pfn) == lazy.lookup(pfn)
