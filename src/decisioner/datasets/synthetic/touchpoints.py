"""The events of a synthetic world outside web and app sessions: loyalty enrolments synced from
the CRM, store purchases, returns, call-centre calls, coupon redemptions and newsletter opens,
keyed by CRM id, phone, email or user id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from .catalog import SyntheticCatalog
from .events import EventBuffer
from .people import People
from .spec import DAY_MS, I64

__all__ = ["Touchpoints", "draw_touchpoints", "add_touchpoint_events"]

_CALL_REASONS: Final[tuple[str, ...]] = ("delivery", "billing", "product_question", "return", "account")
_COUPONS: Final[tuple[str, ...]] = ("WELCOME10", "SPRING15", "FREESHIP", "VIP20", "BDAY25")


@dataclass
class Touchpoints:
    """How many events of each kind outside sessions every person has, shape ``(n_people,)``."""

    n_store: I64  # store purchases
    n_opens: I64  # newsletter opens
    n_calls: I64
    n_coupons: I64


def draw_touchpoints(people: People, *, rng: np.random.Generator) -> Touchpoints:
    """Draw the number of store purchases, newsletter opens, calls and coupons of every person
    (the events themselves are drawn by :func:`add_touchpoint_events` from the same ``rng``)."""
    N = len(people.crm_id)
    rx = rng
    n_store = np.where([c is not None for c in people.crm_id], rx.poisson(0.6, size=N), 0)
    n_opens = np.where(people.real_email, rx.poisson(1.0, size=N), 0)
    has_phone = np.array([s is not None for s in people.phone_spell])
    has_crm = np.array([c is not None for c in people.crm_id])
    has_uid = np.array([u is not None for u in people.user_id])
    n_calls = np.where(has_crm | has_phone, rx.poisson(0.25, size=N), 0)
    n_coupons = np.where(people.any_email | has_uid, rx.poisson(0.12, size=N), 0)
    return Touchpoints(n_store=n_store, n_opens=n_opens, n_calls=n_calls, n_coupons=n_coupons)


def add_touchpoint_events(
    ev: EventBuffer,
    *,
    counts: Touchpoints,
    people: People,
    catalog: SyntheticCatalog,
    drawn: I64,
    store_off: I64,
    campaigns: list[str],
    start_ms: int,
    horizon: int,
    rng: np.random.Generator,
) -> None:
    """Add the events outside sessions to ``ev``: enrolments, store purchases (person ``p``'s
    items are ``drawn[store_off[p]:]``), returns of any purchase in ``ev``, calls, coupons and
    newsletter opens, at times uniform over the period."""
    n_store, n_opens, n_calls, n_coupons = counts.n_store, counts.n_opens, counts.n_calls, counts.n_coupons
    has_crm = np.array([c is not None for c in people.crm_id])
    rx = rng
    day0 = start_ms
    n_exp = len(campaigns)
    exp_ids = campaigns
    skus = [r["id"] for r in catalog.rows]
    prices = [float(r["price"]) for r in catalog.rows]

    def times(k: int) -> list[int]:
        out: list[int] = (day0 + rx.integers(0, horizon, size=k)).tolist()
        return out

    store_people = np.nonzero(has_crm)[0]
    enrol_t = times(store_people.size)
    enrol_u = rx.random((store_people.size, 3)).tolist()
    for p, t, (ue, uph, uu) in zip(store_people.tolist(), enrol_t, enrol_u):
        # A loyalty enrolment synced from the CRM: joins the CRM id to the person's contacts.
        ids = {"crm_id": people.crm_id[p] or ""}
        if people.email[p] is not None and ue < 0.7:
            ids["email"] = people.email_spell[p][0]
        ph = people.phone_spell[p]
        if ph is not None and uph < 0.6:
            ids["phone"] = ph[1] if people.messy[p] else ph[0]
        uid = people.user_id[p]
        if uid is not None and uu < 0.3:
            ids["user_id"] = uid
        if len(ids) > 1:
            ev.add({"type": "identify", "time": t, "ids": ids, "channel": "store"}, p)

    store_t = times(int(n_store.sum()))
    store_ph = rx.random(len(store_t)).tolist()
    k = 0
    for p in np.nonzero(n_store)[0].tolist():
        base = int(store_off[p])
        for j in range(int(n_store[p])):
            it = int(drawn[base + j])
            t = store_t[k]
            ids = {"crm_id": people.crm_id[p] or ""}
            ph = people.phone_spell[p]
            if ph is not None and store_ph[k] < 0.3:
                ids["phone"] = ph[0]
            k += 1
            if catalog.inventory[it] == 0:
                continue
            ev.add({"type": "purchase", "time": t, "ids": ids, "channel": "store", "item": skus[it],
                    "value": prices[it], "order_id": ev.order_id()}, p)
            ev.purchases.append((p, it, t))

    ret_u = rx.random(len(ev.purchases)).tolist()
    ret_gap = rx.integers(DAY_MS, 10 * DAY_MS, size=len(ev.purchases)).tolist()
    ret_ph = rx.random(len(ev.purchases)).tolist()
    for (p, it, t), ur, g, uph in zip(ev.purchases, ret_u, ret_gap, ret_ph):
        if ur >= 0.07 or t + g >= day0 + horizon:
            continue
        crm = people.crm_id[p]
        ph = people.phone_spell[p]
        uid = people.user_id[p]
        if crm is not None:
            ids = {"crm_id": crm}
            if ph is not None and uph < 0.3:
                ids["phone"] = ph[0]
            ch = "store"
        elif uid is not None:
            ids, ch = {"user_id": uid}, "web"
        elif people.email[p] is not None:
            ids, ch = {"email": people.email_spell[p][0]}, "web"
        else:
            continue
        ev.add({"type": "return", "time": t + g, "ids": ids, "channel": ch, "item": skus[it], "value": prices[it]}, p)

    call_t = times(int(n_calls.sum()))
    call_u = rx.random((len(call_t), 2)).tolist()
    call_reason = rx.integers(0, len(_CALL_REASONS), size=len(call_t)).tolist()
    k = 0
    for p in np.nonzero(n_calls)[0].tolist():
        crm = people.crm_id[p]
        ph = people.phone_spell[p]
        for _ in range(int(n_calls[p])):
            u1, u2 = call_u[k]
            if crm is not None and ph is not None:
                # The agent finds the account from the caller's number 40 % of the time.
                one = {"crm_id": crm} if u2 < 0.5 else {"phone": ph[0]}
                ids = {"crm_id": crm, "phone": ph[0]} if u1 < 0.4 else one
            elif crm is not None:
                ids = {"crm_id": crm}
            else:
                assert ph is not None
                ids = {"phone": ph[int(u2 * len(ph)) if people.messy[p] else 0]}
            ev.add({"type": "service_call", "time": call_t[k], "ids": ids, "channel": "call_center",
                    "reason": _CALL_REASONS[call_reason[k]]}, p)
            k += 1

    coup_t = times(int(n_coupons.sum()))
    coup_u = rx.random((len(coup_t), 2)).tolist()
    coup_code = rx.integers(0, len(_COUPONS), size=len(coup_t)).tolist()
    k = 0
    for p in np.nonzero(n_coupons)[0].tolist():
        for _ in range(int(n_coupons[p])):
            u1, u2 = coup_u[k]
            uid = people.user_id[p]
            if people.email[p] is not None and (uid is None or u1 < 0.5):
                ids = {"email": people.email_spell[p][0]}
            else:
                ids = {"user_id": uid or ""}
            ev.add({"type": "coupon_redeem", "time": coup_t[k], "ids": ids,
                    "channel": "store" if u2 < 0.3 else "web", "coupon": _COUPONS[coup_code[k]]}, p)
            k += 1

    open_t = times(int(n_opens.sum()))
    open_c = rx.integers(0, n_exp + 4, size=len(open_t)).tolist()
    k = 0
    for p in np.nonzero(n_opens)[0].tolist():
        for _ in range(int(n_opens[p])):
            t = open_t[k]
            c = open_c[k]
            campaign = exp_ids[c] if c < n_exp else f"newsletter-w{(t - day0) // (7 * DAY_MS) + 1:02d}"
            ev.add({"type": "email_open", "time": t, "ids": {"email": people.email_spell[p][0]},
                    "channel": "email", "campaign": campaign}, p)
            k += 1
