"""The data plane: a fixed chain of small ASGI stages, built in `pipeline.py`."""
