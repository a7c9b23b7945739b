"""Benchmarks (not tests): each module prints its figures next to an anchor measured on the
same machine in the same run."""
