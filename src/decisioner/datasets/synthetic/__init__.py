"""A seeded synthetic world: catalog, people with latent preferences, identifiers, journeys.

The world exists to test, demo and benchmark the engine against a known truth:

* a **catalog** of items with facets (category, brand, colour, 1-3 tags), a log-normal price
  and an inventory (about 3 % out of stock); brands sell in 1-3 categories and item appeal is
  Zipf-like;
* **people** with latent preferences over every facet (category, brand, colour, price band,
  tags). The utility of item ``i`` for person ``p`` is the plain sum

  .. math:: u(p, i) = \\sum_f \\log(K_f \\theta_{p,f}[v_f(i)]) + a_i

  where :math:`\\theta_{p,f}` is the person's preference distribution over the :math:`K_f`
  values of facet ``f`` (tags: the mean over the item's tags) and :math:`a_i` the item appeal;
* a **response model** (:class:`ResponseModel`) built on that utility, which a closed-loop
  simulator uses to decide whether a person clicks what the engine shows;
* **identifiers** (cookies per device, email, user id, CRM id, phone) with the ground truth of
  who owns each one, shared household tablets and optional placeholder emails;
* **journeys** over ``days``: anonymous sessions (ad click, email open/click or direct) with
  views drawn from the same utility (``P(view i) ~ exp(u(p, i))``), carts, purchases, logins
  (``identify``) that join anonymous cookies to known people, store and call-centre events
  keyed by CRM id or phone, returns, coupons and downloads.

Nothing in the model is tuned to flatter a policy: the click intercept and slope only set the
overall click-through rate (a uniformly random item about 2 %, a person's best items 10-25 %).

The package holds one part per module: :mod:`.spec` (:class:`WorldSpec` and the shared constants),
:mod:`.response` (:class:`ResponseModel`), :mod:`.world` (:class:`World`, the world in
memory), :mod:`.generate` (:func:`generate_world`, which draws the parts in order: :mod:`.catalog`,
:mod:`.people` (preferences and identifiers), :mod:`.sessions`, :mod:`.touchpoints` (events
outside sessions), over :mod:`.draws` and the :mod:`.events` buffer) and :mod:`.files`
(:func:`write_world`, :func:`load_world`, the on-disk format).

Examples
--------
>>> import numpy as np
>>> world = generate_world(WorldSpec(n_people=50, n_items=40, seed=1))
>>> world.items[0]["id"]
'sku-00001'
>>> all(world.events[k]["time"] <= world.events[k + 1]["time"] for k in range(len(world.events) - 1))
True
>>> p = world.response.click_prob(0, np.array([0, 1]), np.array([0, 1]))
>>> bool(((p > 0) & (p < 1)).all())
True
"""

from .files import FORMAT_VERSION, load_world, write_world
from .generate import generate_world
from .response import ResponseModel
from .spec import PRICE_BANDS, WorldSpec
from .world import World

__all__ = [
    "PRICE_BANDS",
    "FORMAT_VERSION",
    "WorldSpec",
    "World",
    "ResponseModel",
    "generate_world",
    "write_world",
    "load_world",
]
