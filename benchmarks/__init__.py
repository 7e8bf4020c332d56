"""Benchmarks of the engine and the node against the reference implementations.

Run from the repository root as ``python -m benchmarks.<name>`` (``make bench``, ``make
speed``); see docs/benchmarks.md for what each one measures and its results.
"""
