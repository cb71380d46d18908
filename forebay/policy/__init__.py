"""Pure policy: no I/O, no asyncio, the clock passed in. Checked with `mypy --strict`."""
