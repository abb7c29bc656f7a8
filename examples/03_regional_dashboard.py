"""The regional dashboard: how each region feels about each issue, refreshed while events stream in.

A synthetic world's events (views, purchases, logins that carry the person's region and zip
code, and opinions: survey answers, inbound emails, agents' notes) stream into an engine; every
N events the live region x topic table is printed (mean sentiment +- the half-width of its 95%
interval, and the number of opinions), then the engagement tiers with their value against the
average.

Run: python examples/03_regional_dashboard.py   (a few seconds)
"""

import os
import tempfile
from pathlib import Path

import msgspec

from decisioner import Engine, warm_up
from decisioner.datasets.synthetic import WorldSpec, generate_world, write_world
from decisioner.pulse import format_table

warm_up()
world_dir = os.environ.get("DECISIONER_EXAMPLE_WORLD")
if world_dir is None:
    world_dir = tempfile.mkdtemp(prefix="decisioner-world-")
    write_world(generate_world(WorldSpec(n_people=1500, n_items=800, seed=3)), world_dir)

engine = Engine.from_world(world_dir, seed=0)  # its config.toml declares region/zip, [engagement], [pulse]
lines = Path(world_dir, "events.jsonl").read_bytes().splitlines()
every = max(1, len(lines) // 3)
for k, line in enumerate(lines, 1):
    engine.track(line)  # JSON bytes straight from the stream
    if k % every == 0 or k == len(lines):
        opinions = engine.pulse_.opinions_
        print(f"\n--- after {k} events ({opinions} opinions counted) ---")
        print(format_table(engine.pulse()))

now = msgspec.json.decode(lines[-1])["time"]
report = engine.tier_report(now)
print(f"\nengagement tiers at the last event ({report['people']} profiles, mean value {report['mean_value']:.2f}):")
for t in report["tiers"]:
    index = "" if t["value_index"] is None else f"{t['value_index']:+.0%} vs average"
    print(f"  {t['tier']:<12} {t['people']:>6} ({t['share']:.0%})  mean value {t['mean_value']:8.2f}  {index}")

cells = engine.pulse()
assert sum(c["count"] for c in cells) == engine.pulse_.opinions_
assert all(c["low"] <= c["mean"] <= c["high"] for c in cells if c["low"] is not None)
