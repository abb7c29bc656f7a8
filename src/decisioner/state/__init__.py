"""State backends: the embedded arrays (default) and Redis for many workers and hosts."""
