"""Benchmarks for leadlex-nb: ``make bench`` runs :mod:`benchmarks.run`; figures in BENCHMARKS.md."""
