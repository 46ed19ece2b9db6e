"""Benchmarks: the gateway against the limit of its own stack. Run `python -m bench`."""
