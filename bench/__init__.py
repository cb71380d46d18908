"""Benchmarks for forebay; each scenario is a module run with `python -m bench.<name>`."""
