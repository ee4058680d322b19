"""dbgauto-testkit: synthetic crash dumps for dbgauto's tests, benchmarks and demo (a dev-only package).

``dbgauto_testkit.dumpsynth`` writes large sparse dumps with real page tables; ``dbgauto_testkit.dumpinflate``
rebuilds large dumps from a real small dump and builds synthetic kernel worlds. Neither imports ``dbgauto``:
the bytes they write come from the spec, so they can check dbgauto's readers instead of mirroring them.
"""
