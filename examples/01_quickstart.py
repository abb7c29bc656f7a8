"""Quick start: an engine over a tiny catalog, a few behaviour events, a decision, an outcome.

Run: python examples/01_quickstart.py
"""

import secrets

from decisioner import Catalog, Engine, load_config_dict, warm_up

warm_up()  # compile or load cached kernels once, at start-up
config = load_config_dict({
    "identity": {"hash_key": secrets.token_hex(16)},  # in production: DECISIONER_HASH_KEY
    "placements": [{"name": "home", "kind": "recommendation", "slots": 3}],
})
catalog = Catalog([
    {"id": f"sku-{i}", "category": ["shoes", "bags", "hats"][i % 3], "brand": f"b{i % 4}",
     "price": 20.0 + 7 * i, "inventory": 5}
    for i in range(30)
])
engine = Engine(config, catalog, seed=0)

t = 1_700_000_000_000
for k, sku in enumerate(["sku-0", "sku-3", "sku-6"]):  # an anonymous visitor looks at shoes
    engine.track({"type": "view", "time": t + k * 1000, "ids": {"cookie": "ck-42"}, "item": sku})
# they log in: the cookie's history joins the known person
engine.track({"type": "identify", "time": t + 5000, "ids": {"cookie": "ck-42", "email": "Ada@Example.com"}})

decision = engine.decide(
    {"type": "view", "time": t + 6000, "ids": {"email": "ada@example.com"}}, placement="home"
)
for slot in decision.slots:
    print(f"{slot.content:>7}  score={slot.score:.3f}  propensity={slot.propensity:.3f}")
print("because:", [r.detail for r in decision.reasons if r.kind == "affinity"])
print(f"decided in {decision.latency_us:.0f} us")
engine.observe({"decision_id": decision.decision_id, "kind": "click", "time": t + 7000,
                "content": decision.slots[0].content})
assert all(catalog.ids.index(s.content) % 3 == 0 for s in decision.slots[:2])  # shoes first
