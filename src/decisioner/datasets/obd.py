"""The Open Bandit Dataset sample (ZOZOTOWN fashion recommendations; Saito, Aihara, Matsutani and
Narita, "Open Bandit Dataset and Pipeline", NeurIPS 2021 Datasets and Benchmarks).

Two policies ran side by side on the same three-slot widget: uniform random and the production
Bernoulli Thompson sampling ("bts"), each over three campaigns (``all``: 80 items, ``men``: 34,
``women``: 46), with their true propensities logged. The small sample (10,000 rounds per
policy and campaign) ships inside the PyPI wheel ``obp==0.4.1``, together with the Beta priors
of the production Thompson sampler. This module fetches that wheel with ``pip download
obp==0.4.1 --no-deps`` once per machine into a cache directory outside the repository and reads
the CSVs straight from the zip: ``obp`` itself is never installed or imported.

Cache directory: ``$DECISIONER_DATA_DIR``, else ``$XDG_CACHE_HOME/decisioner``, else
``~/.cache/decisioner``. The wheel's SHA-256 is checked on every load.

The published "evaluation of OPE" protocol that runs estimators on these logs against the
on-policy truth is :func:`decisioner.evaluation.obd_protocol.ope_benchmark`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np

from ..errors import ConfigError, NotReadyError

__all__ = [
    "OBP_WHEEL",
    "OBP_SHA256",
    "CAMPAIGNS",
    "BEHAVIORS",
    "OBDData",
    "cache_dir",
    "fetch_obd",
    "check_log",
    "load_obd",
    "bts_prior",
    "bts_action_distribution",
]

OBP_WHEEL: Final = "obp-0.4.1-py3-none-any.whl"
OBP_SHA256: Final = "87dec9caf4283c25ab13036532e0a24566f1c7bdcad1653a8ded43b2f5ef8208"
CAMPAIGNS: Final = ("all", "men", "women")
BEHAVIORS: Final = ("random", "bts")

Campaign = Literal["all", "men", "women"]
Behavior = Literal["random", "bts"]


def cache_dir(override: str | Path | None = None) -> Path:
    """Where the wheel is cached (see the module docstring)."""
    if override is not None:
        return Path(override)
    env = os.environ.get("DECISIONER_DATA_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "decisioner"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_obd(cache: str | Path | None = None) -> Path:
    """Path of the cached ``obp==0.4.1`` wheel, downloading it with pip the first time.

    Raises
    ------
    NotReadyError
        If the download fails or the file's checksum is wrong (the message says why and where
        to put the wheel by hand).
    """
    d = cache_dir(cache)
    path = d / OBP_WHEEL
    if path.is_file() and _sha256(path) == OBP_SHA256:
        return path
    d.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=d, prefix=".download-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "obp==0.4.1", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", tmp]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NotReadyError(
                f"expected to download {OBP_WHEEL} with pip, got {type(exc).__name__}: {exc} - at {str(d)!r} "
                f"(download it by hand with `pip download obp==0.4.1 --no-deps -d {d}`)"
            ) from None
        got = Path(tmp) / OBP_WHEEL
        if proc.returncode != 0 or not got.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise NotReadyError(
                f"expected `pip download obp==0.4.1` to fetch {OBP_WHEEL}, got exit code {proc.returncode}: "
                f"{' | '.join(tail)} - at {str(d)!r} (check network access to PyPI, or put the wheel there by hand)"
            )
        digest = _sha256(got)
        if digest != OBP_SHA256:
            raise NotReadyError(
                f"expected {OBP_WHEEL} with SHA-256 {OBP_SHA256}, got {digest} - at {str(got)!r}"
            )
        os.replace(got, path)  # atomic: concurrent loaders see the whole file or none
    return path


@dataclass(frozen=True)
class OBDData:
    """One (behaviour policy, campaign) log, sorted by time.

    ``action`` (item), ``position`` (0, 1, 2), ``reward`` (click), ``pscore`` (the logging
    policy's propensity of that item at that position); ``context``: one-hot user features
    (first level of each dropped, levels in sorted order); ``affinity``: the user-item affinity
    columns; ``action_context``: label-encoded item features 1-3 then item feature 0 (the Open
    Bandit Pipeline's default preprocessing).
    """

    behavior: str
    campaign: str
    timestamp: np.ndarray
    action: np.ndarray
    position: np.ndarray
    reward: np.ndarray
    pscore: np.ndarray
    context: np.ndarray
    affinity: np.ndarray
    action_context: np.ndarray
    n_actions: int
    len_list: int

    @property
    def n_rounds(self) -> int:
        return int(self.action.shape[0])

    def bandit_log(self) -> Any:
        """As an :class:`decisioner.evaluation.ope.BanditLog`."""
        from ..evaluation.ope import BanditLog

        return BanditLog(
            action=self.action, reward=self.reward, pscore=self.pscore, n_actions=self.n_actions,
            position=self.position, len_list=self.len_list, context=self.context,
            action_context=self.action_context,
        )


def _read_csv(zf: zipfile.ZipFile, name: str) -> tuple[list[str], list[list[str]]]:
    with zf.open(name) as fh:
        rows = list(csv.reader(io.TextIOWrapper(fh, encoding="utf-8", newline="")))
    return rows[0], rows[1:]


def check_log(behavior: str, campaign: str) -> None:
    """Check that ``behavior`` and ``campaign`` name one of the sample's logs.

    Raises
    ------
    ConfigError
        On an unknown behaviour policy or campaign.
    """
    if behavior not in BEHAVIORS:
        raise ConfigError(f"expected a behaviour policy in {list(BEHAVIORS)!r}, got {behavior!r} - at `behavior`")
    if campaign not in CAMPAIGNS:
        raise ConfigError(f"expected a campaign in {list(CAMPAIGNS)!r}, got {campaign!r} - at `campaign`")


def load_obd(behavior: str = "random", campaign: str = "all", *, cache: str | Path | None = None) -> OBDData:
    """Load one log of the Open Bandit Dataset sample (downloading the wheel if needed).

    Raises
    ------
    ConfigError
        On an unknown behaviour policy or campaign.
    NotReadyError
        If the wheel cannot be fetched.
    """
    check_log(behavior, campaign)
    base = f"obp/dataset/obd/{behavior}/{campaign}/"
    with zipfile.ZipFile(fetch_obd(cache)) as zf:
        head, rows = _read_csv(zf, base + f"{campaign}.csv")
        ihead, irows = _read_csv(zf, base + "item_context.csv")
    col = {name: i for i, name in enumerate(head)}
    order = sorted(range(len(rows)), key=lambda i: rows[i][col["timestamp"]])  # stable
    rows = [rows[i] for i in order]
    action = np.array([int(r[col["item_id"]]) for r in rows], dtype=np.int64)
    raw_pos = np.array([int(r[col["position"]]) for r in rows], dtype=np.int64)
    levels = np.unique(raw_pos)
    position = np.searchsorted(levels, raw_pos).astype(np.int64)  # dense rank from 0
    reward = np.array([float(r[col["click"]]) for r in rows], dtype=np.float64)
    pscore = np.array([float(r[col["propensity_score"]]) for r in rows], dtype=np.float64)
    user_cols = [c for c in head if c.startswith("user_feature")]
    blocks = []
    for c in user_cols:
        vals = [r[col[c]] for r in rows]
        cats = sorted(set(vals))
        index = {v: i for i, v in enumerate(cats)}
        codes = np.array([index[v] for v in vals], dtype=np.int64)
        onehot = np.zeros((len(rows), len(cats)), dtype=np.float64)
        onehot[np.arange(len(rows)), codes] = 1.0
        blocks.append(onehot[:, 1:])  # drop the first level
    context = np.hstack(blocks) if blocks else np.zeros((len(rows), 0))
    aff_cols = [c for c in head if c.startswith("user-item_affinity")]
    if aff_cols:
        a0 = col[aff_cols[0]]
        affinity = np.array([r[a0 : a0 + len(aff_cols)] for r in rows]).astype(np.float64)
    else:
        affinity = np.zeros((len(rows), 0))
    icol = {name: i for i, name in enumerate(ihead)}
    irows = sorted(irows, key=lambda r: int(r[icol["item_id"]]))
    feats = []
    for c in ("item_feature_1", "item_feature_2", "item_feature_3"):
        vals = [r[icol[c]] for r in irows]
        index = {v: i for i, v in enumerate(sorted(set(vals)))}
        feats.append([float(index[v]) for v in vals])
    feats.append([float(r[icol["item_feature_0"]]) for r in irows])
    action_context = np.array(feats, dtype=np.float64).T.copy()
    timestamp = np.array([r[col["timestamp"]] for r in rows])
    return OBDData(
        behavior=behavior, campaign=campaign, timestamp=timestamp, action=action, position=position,
        reward=reward, pscore=pscore, context=context, affinity=affinity, action_context=action_context,
        n_actions=int(action.max()) + 1, len_list=int(position.max()) + 1,
    )


def bts_prior(campaign: str = "all", *, cache: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The Beta priors (alpha, beta per item) of ZOZOTOWN's production Bernoulli Thompson
    sampler for ``campaign`` (``obp/policy/conf/prior_bts.yaml`` in the wheel)."""
    check_log("bts", campaign)
    with zipfile.ZipFile(fetch_obd(cache)) as zf:
        text = zf.read("obp/policy/conf/prior_bts.yaml").decode("utf-8")
    # the file is a two-level mapping of float lists; parsed here so no YAML library is needed
    data: dict[str, dict[str, list[float]]] = {}
    camp = key = ""
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        item = line.strip()
        if indent == 0 and item.endswith(":"):
            camp = item[:-1]
            data[camp] = {}
        elif item.endswith(":"):
            key = item[:-1]
            data[camp][key] = []
        elif item.startswith("-"):
            data[camp][key].append(float(item[1:]))
    return np.array(data[campaign]["alpha"]), np.array(data[campaign]["beta"])


def bts_action_distribution(
    campaign: str = "all", len_list: int = 3, *, cache: str | Path | None = None
) -> np.ndarray:
    """``pi[a, k]``: probability that the production Bernoulli Thompson sampler puts item ``a``
    at position ``k`` (its ``k``-th highest Beta draw under the production priors).

    Computed by numerical integration (``_kernels.bandit.rank_probabilities``, relative error
    ~1e-5) rather than by Monte Carlo as in the Open Bandit Pipeline.
    """
    from .._kernels import bandit as B

    alpha, beta = bts_prior(campaign, cache=cache)
    out = np.empty((alpha.shape[0], len_list), dtype=np.float64)
    el = np.ones(alpha.shape[0], dtype=np.uint8)
    B.rank_probabilities(B.FAMILY_BETA, np.ascontiguousarray(alpha), np.ascontiguousarray(beta), el,
                         len_list, 12.0, 48, 16_384, 1e-5, out)
    dist: np.ndarray = out / out.sum(axis=0, keepdims=True)
    return dist
