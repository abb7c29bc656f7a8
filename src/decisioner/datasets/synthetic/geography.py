"""The geography of a synthetic world and its opinions: regions with zip prefixes, where each
person lives, and ``opinion`` events (survey answers, inbound messages, agent notes) whose
sentiment depends on the region and the topic.

The geography is seeded and untuned: :data:`REGIONS` names the regions; each gets a population
share from a Dirichlet(4) draw and 2-5 distinct three-digit zip prefixes; a person lives in a
region drawn by share, in one of its prefixes, with two further random digits (``"10047"``).
People carry ``region`` and ``zip`` as profile attributes on every ``identify`` event (logins
and CRM enrolments) and on their opinions (a survey asks for the zip code, an agent's CRM
screen shows it), so a profile learns them when the person is known or answers.

Opinions: each person gives Poisson(0.4) opinions at uniform times over the period, on a topic
of :data:`TOPICS` drawn uniformly. The latent sentiment of a person ``p`` in region ``g`` on
topic ``t`` is ``b[t] + e[g, t] + a[p] + noise`` with ``b ~ N(0, 0.3)`` (the topic's mood),
``e ~ N(0, 0.3)`` (the region's view of it), ``a ~ N(0, 0.2)`` (the person's temper) and
``noise ~ N(0, 0.35)``; the event carries ``tanh`` of it rounded to 0.01, in [-1, 1]. The true
``b`` and ``e`` are in :attr:`Geography.topic_mood` and :attr:`Geography.region_view`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from .draws import dirichlet
from .events import EventBuffer
from .people import People
from .spec import F64, I64

__all__ = ["REGIONS", "TOPICS", "Geography", "make_geography", "add_geography", "add_opinion_events"]

#: region names, in code order
REGIONS: Final[tuple[str, ...]] = (
    "northeast", "mid_atlantic", "southeast", "midwest", "plains", "southwest", "mountain", "pacific",
)
#: topics people give opinions on
TOPICS: Final[tuple[str, ...]] = ("prices", "delivery", "quality", "service", "sustainability", "selection")


@dataclass
class Geography:
    """Regions, their zip prefixes, where each person lives, and the latent opinion model."""

    prefixes: list[list[str]]  # per region: its three-digit zip prefixes
    region: I64  # per person: region index
    zip: list[str]  # per person: five-digit zip code
    topic_mood: F64  # (n_topics,) b
    region_view: F64  # (n_regions, n_topics) e
    temper: F64  # (n_people,) a


def make_geography(n_people: int, rng: np.random.Generator) -> Geography:
    """Draw the regions' shares and zip prefixes, each person's region and zip, and the latent
    opinion model (see the module docstring)."""
    G, T = len(REGIONS), len(TOPICS)
    share = dirichlet(rng, 4.0, (1, G))[0]
    n_pre = rng.integers(2, 6, size=G)
    pool = rng.permutation(np.arange(10, 1000))[: int(n_pre.sum())]
    cuts = np.concatenate([[0], np.cumsum(n_pre)])
    prefixes = [[f"{int(z):03d}" for z in np.sort(pool[cuts[g]:cuts[g + 1]]).tolist()] for g in range(G)]
    region = rng.choice(G, size=n_people, p=share).astype(np.int64)
    pick = rng.random(n_people)
    tail = rng.integers(0, 100, size=n_people)
    zips = []
    for g, u, d in zip(region.tolist(), pick.tolist(), tail.tolist()):
        pre = prefixes[g]
        zips.append(f"{pre[int(u * len(pre))]}{d:02d}")
    return Geography(
        prefixes=prefixes, region=region, zip=zips, topic_mood=rng.normal(0.0, 0.3, size=T),
        region_view=rng.normal(0.0, 0.3, size=(G, T)), temper=rng.normal(0.0, 0.2, size=n_people),
    )


def add_geography(ev: EventBuffer, geo: Geography) -> None:
    """Put each person's ``region`` and ``zip`` on their ``identify`` events in ``ev``."""
    for payload, p in zip(ev.payloads, ev.people):
        if payload["type"] == "identify" and p >= 0:
            payload["attrs"] = {"region": REGIONS[int(geo.region[p])], "zip": geo.zip[p]}


def add_opinion_events(
    ev: EventBuffer, *, people: People, geo: Geography, start_ms: int, horizon: int, rng: np.random.Generator
) -> None:
    """Add every person's opinions to ``ev``: a survey answer or inbound email from people with
    an email, an agent's note keyed by CRM id or phone, else a web survey under a user id or a
    cookie (see the module docstring for the sentiment)."""
    N = len(people.email)
    n_op = rng.poisson(0.4, size=N)
    total = int(n_op.sum())
    times = (start_ms + rng.integers(0, horizon, size=total)).tolist()
    topic = rng.integers(0, len(TOPICS), size=total)
    who = np.repeat(np.arange(N), n_op)
    latent = geo.topic_mood[topic] + geo.region_view[geo.region[who], topic] + geo.temper[who]
    sentiment = np.round(np.tanh(latent + rng.normal(0.0, 0.35, size=total)), 2).tolist()
    u = rng.random(total).tolist()

    def place(p: int) -> dict[str, str]:
        return {"region": REGIONS[int(geo.region[p])], "zip": geo.zip[p]}

    for k, (p, t, c) in enumerate(zip(who.tolist(), times, topic.tolist())):
        email, crm, ph, uid = people.email[p], people.crm_id[p], people.phone_spell[p], people.user_id[p]
        if email is not None and not people.placeholder[p] and u[k] < 0.7:
            ids, ch = {"email": people.email_spell[p][0]}, ("survey" if u[k] < 0.45 else "email")
        elif crm is not None or ph is not None:
            ids, ch = ({"crm_id": crm} if crm is not None else {"phone": ph[0] if ph else ""}), "call_center"
        elif uid is not None:
            ids, ch = {"user_id": uid}, "survey"
        elif people.slot_cookie[p]:
            ids, ch = {"cookie": people.slot_cookie[p][0]}, "survey"
        else:
            continue
        ev.add({"type": "opinion", "time": t, "ids": ids, "channel": ch, "topic": TOPICS[c],
                "sentiment": float(min(1.0, max(-1.0, sentiment[k]))), "attrs": place(p)}, p)
