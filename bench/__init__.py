"""Benchmarks (not tests): each module measures its figures next to an anchor measured on the
same machine in the same run; ``python -m bench`` runs them all into one table (bench/suite.py
says what a module provides, bench/report.py how the table reads)."""
