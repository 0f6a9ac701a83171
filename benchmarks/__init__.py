"""Benchmarks: suites that write their figures to ``results/``.

Example:
    $ python -m benchmarks engine
"""
