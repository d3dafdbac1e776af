"""Confab's benchmarks: each prints its figures next to a baseline measured in the same run.

Not part of `make test`. See bench/BENCHMARKS.md for the commands and recorded results.
"""
