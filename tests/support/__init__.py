"""Real parts for tests: a loopback origin with injectable faults, gateway processes."""
