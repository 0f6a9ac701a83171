"""Benchmarks: suites that write their figures to ``results/``.

Example:
    $ autoprune bench engine
"""
