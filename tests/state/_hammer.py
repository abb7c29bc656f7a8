"""A worker process of the concurrent-merge test: links a shuffled copy of the same events into
the Redis identity graph as fast as it can, starting when the test says go.

Usage: python _hammer.py URL PREFIX CLUSTER(0|1) EVENTS.json SEED
"""

from __future__ import annotations

import json
import random
import sys
import time

from decisioner.state import RedisState
from decisioner.state.identity import RedisIdentity

KEY = b"h" * 16


def main(argv: list[str]) -> int:
    url, prefix, cluster, path, seed = argv[0], argv[1], argv[2] == "1", argv[3], int(argv[4])
    with open(path) as f:
        events = json.load(f)
    random.Random(seed).shuffle(events)
    st = RedisState.from_url(url, key_prefix=prefix, cluster=cluster)
    ids = RedisIdentity(st, KEY)
    st.execute("INCR", st.key("hammer", "ready"))
    deadline = time.monotonic() + 60
    while st.execute("GET", st.key("hammer", "go")) is None:
        if time.monotonic() > deadline:
            return 3
        time.sleep(0.005)
    for ev in events:
        ids.link_one(ev["ids"], time=ev["time"])
    st.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
