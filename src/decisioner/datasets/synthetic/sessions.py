"""The web and app sessions of a synthetic world: when each person visits, on which device and
from which entry (ad click, email click or direct), the items they view (drawn by utility), carts,
purchases, logins (``identify``) that join an anonymous cookie to the known person, and
downloads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from .catalog import SyntheticCatalog
from .events import EventBuffer
from .people import DEVICES, MOBILE, People
from .response import ResponseModel
from .spec import DAY_MS, F64, HOUR_MS, I64, Bool, WorldSpec

__all__ = ["Sessions", "draw_sessions", "add_session_events"]

_AD_SOURCES: Final[tuple[str, ...]] = ("search", "social", "display", "video")
_ASSETS: Final[tuple[str, ...]] = ("lookbook", "size-guide", "catalogue")
#: Share of sessions starting in each hour of the day (a plain diurnal shape, evening peak).
_HOURLY: Final[tuple[float, ...]] = (
    1, 0.6, 0.4, 0.3, 0.3, 0.5, 1, 2, 3, 3.5, 3.5, 3.5, 4, 4, 3.5, 3.5, 3.5, 4, 5, 6, 6.5, 6, 4, 2,
)

_ENTRY_DIRECT: Final = 0
_ENTRY_AD: Final = 1
_ENTRY_EMAIL: Final = 2


@dataclass
class Sessions:
    """Every session's draws, one entry per session with the sessions grouped by person (except
    ``views_per_person``)."""

    person: I64
    slot: I64  # device slot of the person
    start: I64  # epoch ms
    entry: I64  # _ENTRY_DIRECT, _ENTRY_AD or _ENTRY_EMAIL
    n_views: I64
    app_u: F64
    ad_source: I64
    ad_no: I64
    campaign: I64  # an experience of the campaign placement, or beyond them a weekly newsletter
    email_variant: I64  # which spelling of the email the person uses
    login_u: F64
    login_pos: I64  # the view the login comes before (n_views: after the last)
    id_email: Bool  # the login carries the email too
    download: Bool
    asset: I64
    entry_gap: I64  # (n_sessions, 2) ms
    end_gap: I64  # (n_sessions, 2) ms
    views_per_person: I64  # (n_people,)


def draw_sessions(spec: WorldSpec, *, people: People, n_campaigns: int, rng: np.random.Generator) -> Sessions:
    """Draw every session at once (vectorised): person, device slot, start, entry, views and
    the uniforms the session's events are decided with."""
    N = spec.n_people
    n_exp = n_campaigns
    rs = rng
    if spec.visit_shape is None:
        n_sess = 1 + rs.poisson(3.0, size=N)
    else:  # a rate per person (NBD); drawn only when asked, so default worlds keep their draws
        k = float(spec.visit_shape)
        n_sess = 1 + rs.poisson(3.0 * rs.gamma(k, 1.0 / k, size=N))
    S = int(n_sess.sum())
    sp = np.repeat(np.arange(N), n_sess)
    slot = (rs.random(S) * people.n_slots[sp]).astype(np.int64)
    # Every member of a sharing pair uses the shared tablet at least once.
    sess_start = np.concatenate([[0], np.cumsum(n_sess)[:-1]])
    for p in np.nonzero(people.shared_slot >= 0)[0].tolist():
        sl = slot[sess_start[p]: sess_start[p] + n_sess[p]]
        if not (sl == people.shared_slot[p]).any():
            slot[sess_start[p]] = people.shared_slot[p]
    hourly = np.array(_HOURLY) / np.sum(_HOURLY)
    t0 = (
        spec.start_ms
        + rs.integers(0, spec.days, size=S) * DAY_MS
        + rs.choice(24, size=S, p=hourly) * HOUR_MS
        + rs.integers(0, HOUR_MS, size=S)
    )
    u_entry = rs.random(S)
    p_email = np.where(people.real_email[sp], 0.2, 0.0)
    entry = np.where(u_entry < 0.25, _ENTRY_AD, np.where(u_entry < 0.25 + p_email, _ENTRY_EMAIL, _ENTRY_DIRECT))
    n_views = np.minimum(rs.geometric(0.42, size=S), 8)
    app_u = rs.random(S)
    ad_src = rs.integers(0, len(_AD_SOURCES), size=S)
    ad_no = rs.integers(1, 6, size=S)
    camp = rs.integers(0, n_exp + 4, size=S)
    email_var = np.where(people.messy[sp] & (rs.random(S) < 0.5), rs.integers(1, 3, size=S), 0)
    login_u = rs.random(S)
    login_pos = rs.integers(0, n_views + 1)
    id_email = rs.random(S) < 0.3
    download = rs.random(S) < 0.03
    asset = rs.integers(0, len(_ASSETS), size=S)
    entry_gap = rs.integers(2_000, 90_000, size=(S, 2))
    end_gap = rs.integers(5_000, 120_000, size=(S, 2))
    views_pp = np.bincount(sp, weights=n_views, minlength=N).astype(np.int64)
    return Sessions(
        person=sp, slot=slot, start=t0, entry=entry, n_views=n_views, app_u=app_u, ad_source=ad_src,
        ad_no=ad_no, campaign=camp, email_variant=email_var, login_u=login_u, login_pos=login_pos,
        id_email=id_email, download=download, asset=asset, entry_gap=entry_gap, end_gap=end_gap,
        views_per_person=views_pp,
    )


def add_session_events(
    ev: EventBuffer,
    *,
    sessions: Sessions,
    people: People,
    catalog: SyntheticCatalog,
    model: ResponseModel,
    drawn: I64,
    drawn_u: F64,
    person_off: I64,
    campaigns: list[str],
    start_ms: int,
    rng: np.random.Generator,
) -> None:
    """Add the events of every session to ``ev``, session by session.

    ``drawn[person_off[p]:]`` are the items person ``p`` views, in session order, with their
    utilities ``drawn_u``; a view is carted and bought with draws from ``rng``.
    """
    s_ = sessions
    sp, slot, t0, entry, n_views = s_.person, s_.slot, s_.start, s_.entry, s_.n_views
    app_u, ad_src, ad_no, camp, email_var = s_.app_u, s_.ad_source, s_.ad_no, s_.campaign, s_.email_variant
    login_u, login_pos, id_email, download, asset = s_.login_u, s_.login_pos, s_.id_email, s_.download, s_.asset
    entry_gap, end_gap, views_pp = s_.entry_gap, s_.end_gap, s_.views_per_person
    S = sp.shape[0]
    n_exp = len(campaigns)
    exp_ids = campaigns
    has_uid = np.array([u is not None for u in people.user_id])
    r_view = rng

    V = int(n_views.sum())
    view_sess = np.repeat(np.arange(S), n_views)
    view_first = np.concatenate([[0], np.cumsum(n_views)[:-1]])  # first view of each session
    views_before = np.concatenate([[0], np.cumsum(views_pp)[:-1]])
    local = np.arange(V) - views_before[sp[view_sess]]
    vidx = person_off[sp[view_sess]] + local
    view_item = drawn[vidx]
    pp = model.purchase_prob_from_utility(drawn_u[vidx], view_item)
    # An organic view is browsing, not a click on a recommendation: it is carted with the
    # purchase probability and 30 % of carts are bought (about 10 % of sessions convert).
    cart = r_view.random(V) < pp
    buy = cart & (r_view.random(V) < 0.3)
    view_gap = 2_000 + r_view.exponential(40_000.0, size=V).astype(np.int64)
    cart_gap = r_view.integers(3_000, 60_000, size=V)
    sess_buys = np.bincount(view_sess, weights=buy, minlength=S) > 0
    login = has_uid[sp] & (login_u < np.where(sess_buys, 0.85, 0.3))
    app = (entry == _ENTRY_DIRECT) & (app_u < 0.5)

    skus = [r["id"] for r in catalog.rows]
    prices = [float(r["price"]) for r in catalog.rows]

    sp_l, slot_l, t0_l, entry_l = sp.tolist(), slot.tolist(), t0.tolist(), entry.tolist()
    nv_l, vf_l = n_views.tolist(), view_first.tolist()
    app_l, src_l, adn_l, camp_l = app.tolist(), ad_src.tolist(), ad_no.tolist(), camp.tolist()
    evar_l, login_l, lpos_l, idem_l = email_var.tolist(), login.tolist(), login_pos.tolist(), id_email.tolist()
    dl_l, asset_l, eg_l, endg_l = download.tolist(), asset.tolist(), entry_gap.tolist(), end_gap.tolist()
    vi_l, cart_l, buy_l = view_item.tolist(), cart.tolist(), buy.tolist()
    vg_l, cg_l = view_gap.tolist(), cart_gap.tolist()
    day0 = start_ms

    for s in range(S):
        p = sp_l[s]
        t = t0_l[s]
        ck = people.slot_cookie[p][slot_l[s]]
        kind = people.slot_kind[p][slot_l[s]]
        dev = DEVICES[kind]
        ch = "app" if (app_l[s] and kind == MOBILE) else "web"
        e = entry_l[s]
        if e == _ENTRY_AD:
            src = _AD_SOURCES[src_l[s]]
            ev.add({"type": "ad_click", "time": t, "ids": {"cookie": ck}, "channel": "ads",
                    "device": dev, "attrs": {"source": src}, "campaign": f"ads-{src}-{adn_l[s]:02d}"}, p)
            t += eg_l[s][0]
        elif e == _ENTRY_EMAIL:
            em = people.email_spell[p][evar_l[s]]
            c = camp_l[s]
            campaign = exp_ids[c] if c < n_exp else f"newsletter-w{(t - day0) // (7 * DAY_MS) + 1:02d}"
            ev.add({"type": "email_open", "time": t, "ids": {"email": em}, "channel": "email",
                    "device": dev, "campaign": campaign}, p)
            t += eg_l[s][0]
            ev.add({"type": "email_click", "time": t, "ids": {"email": em}, "channel": "email",
                    "device": dev, "campaign": campaign}, p)
            t += eg_l[s][1]
        uid = people.user_id[p]
        logged = False
        lp = lpos_l[s] if login_l[s] else -1
        n = nv_l[s]
        basket: list[int] = []

        def identify(t: int) -> None:
            ids = {"cookie": ck, "user_id": uid}
            if idem_l[s] and people.email[p] is not None:
                ids["email"] = people.email_spell[p][evar_l[s]]
            ev.add({"type": "identify", "time": t, "ids": ids, "channel": ch, "device": dev}, p)

        v0 = vf_l[s]
        for j in range(n):
            if j == lp:
                identify(t)
                logged = True
                t += 1_000
            v = v0 + j
            it = vi_l[v]
            ids: dict[str, str] = {"cookie": ck, "user_id": uid} if logged and uid else {"cookie": ck}
            ev.add({"type": "view", "time": t, "ids": ids, "channel": ch, "device": dev, "item": skus[it]}, p)
            if cart_l[v]:
                t += cg_l[v]
                ev.add({"type": "add_to_cart", "time": t, "ids": dict(ids), "channel": ch, "device": dev,
                        "item": skus[it], "value": prices[it]}, p)
            if buy_l[v]:
                basket.append(it)
            t += vg_l[v]
        if lp == n:
            identify(t)
            logged = True
            t += 1_000
        if basket:
            t += endg_l[s][0]
            basket = list(dict.fromkeys(basket))
            if logged and uid:
                ids = {"cookie": ck, "user_id": uid}
            elif people.email[p] is not None:  # guest checkout asks for an email
                ids = {"cookie": ck, "email": people.email_spell[p][evar_l[s]]}
            else:
                ids = {"cookie": ck}
            payload: dict[str, Any] = {"type": "purchase", "time": t, "ids": ids, "channel": ch, "device": dev}
            if len(basket) == 1:
                payload["item"] = skus[basket[0]]
            else:
                payload["items"] = [skus[i] for i in basket]
            payload["value"] = round(sum(prices[i] for i in basket), 2)
            payload["order_id"] = ev.order_id()
            ev.add(payload, p)
            ev.purchases.extend((p, i, t) for i in basket)
        if dl_l[s]:
            t += endg_l[s][1]
            a = "app" if kind == MOBILE else _ASSETS[asset_l[s]]
            ids = {"cookie": ck, "user_id": uid} if logged and uid else {"cookie": ck}
            ev.add({"type": "download", "time": t, "ids": ids, "channel": ch, "device": dev,
                    "attrs": {"asset": a}}, p)
