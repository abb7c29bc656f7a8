"""What a recovered or replayed engine must equal: its whole state as arrays (imported by the
persistence and concurrency tests)."""

from __future__ import annotations

import numpy as np

from decisioner import Engine


def engine_state(e: Engine) -> dict[str, np.ndarray]:
    """Everything a recovery must restore: identity components, profiles, popularity, policy
    statistics, the decision log (its window too) and the exposures, the pending outcomes (times,
    outcomes received, clock), the counters, the registries (identifier types, sources), the
    attributes (columns, vocabularies, source names), engagement and the pulse."""
    out: dict[str, np.ndarray] = {
        "types": np.array(e.identity.types, dtype=object),
        "sources": np.array(e.identity.sources, dtype=object),
        "components": e.identity.component_rows(),
        "node_key": e.identity.node_key_[: e.identity.n_nodes].copy(),
        "fid": e.profiles.fid_.copy(),
        "score": e.profiles.score_.copy(),
        "t": e.profiles.t_.copy(),
        "purchased": e.profiles.purchased_.copy(),
        "consent": e.consent.allow_.copy(),
        "consent_history": e.consent.history_[: e.consent.n_history_].copy(),
        "popularity": e.scorer.popularity_.acc_.copy(),
        "counters": np.array([e.ops_, e.seq_, e.events_]),
        "outcomes": np.array([e.duplicate_outcomes_, e.pending_.expired_, e.pending_.now_, len(e.pending_)]),
    }
    pending, _ = e.pending_.to_state()
    for name in ("time", "received"):
        out[f"pending_{name}"] = pending[name]
    for name in ("content", "propensity", "reward", "seq", "person"):
        out[f"log_{name}"] = e.decision_log.column(name)
    log = e.decision_log
    out["log_window"] = np.array([log.first_handle, log.end_handle, log.dropped_rows_, log.spilled_rows_])
    out["exposures_seq"] = e.experiments_.exposures.column("seq")
    attrs = e.attributes_
    for key, a in attrs.arrays_.items():
        out[f"attributes_{key}"] = a.copy()
    out["attributes_sources"] = np.array(attrs.sources_, dtype=object)
    for name, vocab in attrs.vocab_.items():
        out[f"attributes_{name}_vocab"] = np.array(vocab, dtype=object)
    eng = e.engagement_
    for name in ("last_", "freq_", "value_", "spend_", "tier_"):
        out[f"engagement_{name}"] = getattr(eng, name).copy()
    pulse = e.pulse_
    out["pulse_cells"] = np.stack([pulse.count_.astype(np.float64), pulse.sum_, pulse.sumsq_])
    out["pulse_topics"] = np.array([*pulse.topics_, pulse.dropped_, pulse.opinions_], dtype=object)
    for name in e.placements:
        pl = e.placement(name)
        if pl.bandit is not None and not hasattr(pl.bandit, "trials_"):  # revenue: sums, not successes
            out[f"{name}_trials"] = pl.bandit.stats_.counts_.copy()
            out[f"{name}_sums"] = pl.bandit.stats_.sums_.copy()
        elif pl.bandit is not None:
            out[f"{name}_trials"] = pl.bandit.trials_.copy()
            out[f"{name}_successes"] = pl.bandit.successes_.copy()
        else:
            out[f"{name}_trials"] = pl.state.trials.copy()
            out[f"{name}_clicks"] = pl.state.clicks.copy()
    return out


def assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
