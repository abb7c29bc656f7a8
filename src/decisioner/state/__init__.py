"""State backends: where the state that several worker processes share lives.

The embedded backend (the default) is the components' own arrays in this process. The Redis
backend keeps shared state on a Redis server or Redis Cluster: :mod:`.connection` (client,
retries, errors, key names, function loading), :mod:`.functions` (the server-side library) and
:mod:`.identity` (the identity graph, resolved and merged atomically on the server).
Importing this package does not import redis-py; the first connection does.
"""

from .connection import RedisState

__all__ = ["RedisState"]
