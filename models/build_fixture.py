"""Rebuild ``models/fixture/``: a tiny learned ranker trained on a small seeded synthetic world.

Run from the repository root::

    python models/build_fixture.py

It generates the world (2,000 people, 300 items, seed 5) in a temporary directory and trains
30 trees (lambdarank, seed 0) with ``decisioner.ranking.train.train_from``, the function behind
``decisioner train``. The output is deterministic for a given LightGBM version.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from decisioner.datasets.synthetic import WorldSpec, generate_world, write_world
from decisioner.ranking.train import train_from

OUT = Path(__file__).resolve().parent / "fixture"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        world = write_world(generate_world(WorldSpec(n_people=2000, n_items=300, seed=5)), Path(tmp) / "world")
        rep = train_from(world=world, out=OUT, objective="lambdarank", seed=0, trees=30, candidates=50, negatives=10)
    prov = json.loads((OUT / "provenance.json").read_text())
    prov["source"]["path"] = "decisioner generate --people 2000 --items 300 --seed 5 (events.jsonl)"
    (OUT / "provenance.json").write_text(json.dumps(prov, indent=1) + "\n")
    print(json.dumps({k: rep[k] for k in ("queries", "ndcg@10", "auc")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
