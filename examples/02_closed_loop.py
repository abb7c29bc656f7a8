"""Closed loop on a small synthetic world: the engine against random and most-popular policies.

Run: python examples/02_closed_loop.py   (about ten seconds)
"""

import os
import tempfile

from decisioner import warm_up
from decisioner.datasets.synthetic import WorldSpec, generate_world, write_world
from decisioner.simulate import simulate

warm_up()
world_dir = os.environ.get("DECISIONER_EXAMPLE_WORLD")
if world_dir is None:
    world_dir = tempfile.mkdtemp(prefix="decisioner-world-")
    write_world(generate_world(WorldSpec(n_people=1500, n_items=800, seed=3)), world_dir)

result = simulate(world_dir, seed=0).to_dict()
for policy, ctr in result["ctr"].items():
    print(f"{policy:>8}: CTR {ctr:.4f}")
print(f"lift vs random {result['lift_vs_random']}x, vs popular {result['lift_vs_popular']}x")
assert result["lift_vs_random"] >= 1.5
