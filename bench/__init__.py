"""Benchmarks and accuracy measurements (``make bench``, ``make accuracy``); not part of tests.

Every figure is printed next to a baseline measured in the same run on the same
machine, so the ratio stays meaningful on a shared, noisy machine.
"""
