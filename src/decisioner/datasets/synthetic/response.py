"""The true response model of a synthetic world: click, purchase and campaign-click
probabilities from each person's latent utility of each item."""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ...errors import ConfigError
from .spec import F32, F64, I32, I64

__all__ = ["ResponseModel"]

# --- response-model constants -------------------------------------------------------------
# The click intercept/slope set the overall CTR level only: with the standardised utility z,
# sigmoid(-4.2 + 0.7 z) gives about 2 % for a uniformly random item, ~20 % for a person's top 4
# items and ~10 % for their top 100 (measured at 5,000 items on seeds 0 and 1; checked in
# tests/test_datasets_synthetic.py). Purchase given click rises from 5 % to 15 % with utility; a
# campaign experience is clicked with sigmoid(-3.2 + 0.55 * log-pref of its category), i.e.
# ~2 % for a category outside the person's favourites and ~10 % for a favourite one.
_CLICK_A: Final = -4.2
_CLICK_B: Final = 0.7
_PURCHASE_BASE: Final = 0.05
_PURCHASE_SPAN: Final = 0.10
_PURCHASE_SLOPE: Final = 2.0
_PURCHASE_CENTRE: Final = 1.0
_EXPERIENCE_A: Final = -3.2
_EXPERIENCE_B: Final = 0.55


def _sigmoid(x: F64) -> F64:
    out: F64 = 1.0 / (1.0 + np.exp(-x))
    return out


class ResponseModel:
    """The true behaviour of each person: click, purchase and campaign-click probabilities.

    Utility: :math:`u(p, i) = \\sum_f \\ell_{p,f}[v_f(i)] + a_i` with log-preferences
    :math:`\\ell = \\log(K_f \\theta)` (0 for an indifferent person), the tags term averaged over
    the item's tags, and item appeal :math:`a_i`. With :math:`z = (u - \\mu_u) / \\sigma_u`
    standardised over all (person, item) pairs of the world:

    * ``P(click | item at position k) = bias[k] * sigmoid(click_a + click_b * z)``,
      ``bias[k] = 1 / log2(k + 2)``;
    * ``P(purchase | click) = (purchase_base + purchase_span * sigmoid(purchase_slope *
      (z - purchase_centre))) * [inventory > 0]``;
    * ``P(click experience e) = sigmoid(experience_a + experience_b * l_category[c_e])``.

    Parameters
    ----------
    item_category, item_brand, item_colour, item_band
        Facet value index of each item, shape ``(n_items,)``.
    item_tags
        Tag indices of each item, shape ``(n_items, 3)``, padded with ``-1``.
    item_appeal
        Base appeal :math:`a_i` (Zipf-like: ``-0.8 log(1 + rank)``), shape ``(n_items,)``.
    item_inventory
        Stock of each item (0: cannot be bought), shape ``(n_items,)``.
    pref_category, pref_brand, pref_colour, pref_band, pref_tags
        Log-preferences of each person over each facet, shape ``(n_people, K_f)``.
    experience_category
        Category index of each campaign experience, shape ``(n_experiences,)``.
    u_mean, u_sd
        Mean and standard deviation of the utility over all (person, item) pairs.
    click_a, click_b, purchase_base, purchase_span, purchase_slope, purchase_centre, experience_a, experience_b
        Scalar parameters of the link functions above.
    """

    _ARRAYS: Final[tuple[str, ...]] = (
        "item_category", "item_brand", "item_colour", "item_band", "item_tags", "item_appeal",
        "item_inventory", "pref_category", "pref_brand", "pref_colour", "pref_band", "pref_tags",
        "experience_category",
    )
    _SCALARS: Final[tuple[str, ...]] = (
        "u_mean", "u_sd", "click_a", "click_b", "purchase_base", "purchase_span",
        "purchase_slope", "purchase_centre", "experience_a", "experience_b",
    )

    def __init__(
        self,
        *,
        item_category: npt.ArrayLike,
        item_brand: npt.ArrayLike,
        item_colour: npt.ArrayLike,
        item_band: npt.ArrayLike,
        item_tags: npt.ArrayLike,
        item_appeal: npt.ArrayLike,
        item_inventory: npt.ArrayLike,
        pref_category: npt.ArrayLike,
        pref_brand: npt.ArrayLike,
        pref_colour: npt.ArrayLike,
        pref_band: npt.ArrayLike,
        pref_tags: npt.ArrayLike,
        experience_category: npt.ArrayLike,
        u_mean: float = 0.0,
        u_sd: float = 1.0,
        click_a: float = _CLICK_A,
        click_b: float = _CLICK_B,
        purchase_base: float = _PURCHASE_BASE,
        purchase_span: float = _PURCHASE_SPAN,
        purchase_slope: float = _PURCHASE_SLOPE,
        purchase_centre: float = _PURCHASE_CENTRE,
        experience_a: float = _EXPERIENCE_A,
        experience_b: float = _EXPERIENCE_B,
    ) -> None:
        i32 = np.int32
        self.item_category: I32 = np.ascontiguousarray(item_category, dtype=i32)
        self.item_brand: I32 = np.ascontiguousarray(item_brand, dtype=i32)
        self.item_colour: I32 = np.ascontiguousarray(item_colour, dtype=i32)
        self.item_band: I32 = np.ascontiguousarray(item_band, dtype=i32)
        self.item_tags: I32 = np.ascontiguousarray(item_tags, dtype=i32)
        self.item_appeal: F32 = np.ascontiguousarray(item_appeal, dtype=np.float32)
        self.item_inventory: I32 = np.ascontiguousarray(item_inventory, dtype=i32)
        self.pref_category: F32 = np.ascontiguousarray(pref_category, dtype=np.float32)
        self.pref_brand: F32 = np.ascontiguousarray(pref_brand, dtype=np.float32)
        self.pref_colour: F32 = np.ascontiguousarray(pref_colour, dtype=np.float32)
        self.pref_band: F32 = np.ascontiguousarray(pref_band, dtype=np.float32)
        self.pref_tags: F32 = np.ascontiguousarray(pref_tags, dtype=np.float32)
        self.experience_category: I32 = np.ascontiguousarray(experience_category, dtype=i32)
        self.u_mean = float(u_mean)
        self.u_sd = float(u_sd)
        self.click_a = float(click_a)
        self.click_b = float(click_b)
        self.purchase_base = float(purchase_base)
        self.purchase_span = float(purchase_span)
        self.purchase_slope = float(purchase_slope)
        self.purchase_centre = float(purchase_centre)
        self.experience_a = float(experience_a)
        self.experience_b = float(experience_b)
        self._validate()
        n_tags = self.pref_tags.shape[1]
        # Padding tag -1 points at an extra zero column, so every item sums 3 terms in one order.
        self._tags_ext: I64 = np.where(self.item_tags < 0, n_tags, self.item_tags).astype(np.int64)
        counts = (self.item_tags >= 0).sum(axis=1)
        self._tag_inv: F64 = 1.0 / np.maximum(counts, 1).astype(np.float64)
        self._in_stock: F64 = (self.item_inventory > 0).astype(np.float64)

    def _validate(self) -> None:
        n_items = self.item_category.shape[0]
        n_people = self.pref_category.shape[0]
        for name in ("item_category", "item_brand", "item_colour", "item_band", "item_appeal", "item_inventory"):
            a = getattr(self, name)
            if a.shape != (n_items,):
                raise ConfigError(f"expected `{name}` of shape ({n_items},), got {a.shape} - at `ResponseModel`")
        if self.item_tags.ndim != 2 or self.item_tags.shape[0] != n_items:
            raise ConfigError(
                f"expected `item_tags` of shape ({n_items}, k), got {self.item_tags.shape} - at `ResponseModel`"
            )
        pairs = (
            ("pref_category", "item_category"), ("pref_brand", "item_brand"),
            ("pref_colour", "item_colour"), ("pref_band", "item_band"), ("pref_tags", "item_tags"),
        )
        for pname, iname in pairs:
            p = getattr(self, pname)
            idx = getattr(self, iname)
            if p.ndim != 2 or p.shape[0] != n_people or p.shape[1] < 1:
                raise ConfigError(
                    f"expected `{pname}` of shape ({n_people}, k >= 1), got {p.shape} - at `ResponseModel`"
                )
            lo = -1 if iname == "item_tags" else 0
            if idx.size and (int(idx.min()) < lo or int(idx.max()) >= p.shape[1]):
                raise ConfigError(
                    f"expected `{iname}` values in [{lo}, {p.shape[1]}), got "
                    f"[{int(idx.min())}, {int(idx.max())}] - at `ResponseModel`"
                )
        ec = self.experience_category
        k = self.pref_category.shape[1]
        if ec.ndim != 1 or (ec.size and (int(ec.min()) < 0 or int(ec.max()) >= k)):
            raise ConfigError(f"expected `experience_category` values in [0, {k}) - at `ResponseModel`")
        if not (math.isfinite(self.u_sd) and self.u_sd > 0.0):
            raise ConfigError(f"`u_sd` must be > 0, got {self.u_sd!r} - at `ResponseModel`")

    # --- sizes --------------------------------------------------------------------------

    @property
    def n_people(self) -> int:
        """Number of people."""
        return int(self.pref_category.shape[0])

    @property
    def n_items(self) -> int:
        """Number of items."""
        return int(self.item_category.shape[0])

    @property
    def n_experiences(self) -> int:
        """Number of experiences of the campaign placement."""
        return int(self.experience_category.shape[0])

    # --- utilities ----------------------------------------------------------------------

    def _utility_block(self, people: I64, items: I64) -> F64:
        """Utility of ``items`` for each of ``people``: shape ``(len(people), len(items))``.

        The single-person methods call this with one row, so they return bit-identical values
        to the rows the generator sampled views from.
        """
        u: F64 = np.take(self.pref_category[people], self.item_category[items], axis=1).astype(np.float64)
        u += np.take(self.pref_brand[people], self.item_brand[items], axis=1)
        u += np.take(self.pref_colour[people], self.item_colour[items], axis=1)
        u += np.take(self.pref_band[people], self.item_band[items], axis=1)
        pt = self.pref_tags[people]
        pt_ext = np.concatenate([pt, np.zeros((pt.shape[0], 1), dtype=np.float32)], axis=1)
        tg = self._tags_ext[items]
        tsum: F64 = np.take(pt_ext, tg[:, 0], axis=1).astype(np.float64)
        for j in range(1, tg.shape[1]):
            tsum += np.take(pt_ext, tg[:, j], axis=1)
        u += tsum * self._tag_inv[items]
        u += self.item_appeal[items].astype(np.float64)
        return u

    def _utility_one(self, p: int, items: I64) -> F64:
        """One person's row of :meth:`_utility_block`, by direct indexing (no 2-d temporaries).

        The same additions in the same order and precision, so the values are bit-identical.
        """
        u: F64 = self.pref_category[p, self.item_category[items]].astype(np.float64)
        u += self.pref_brand[p, self.item_brand[items]]
        u += self.pref_colour[p, self.item_colour[items]]
        u += self.pref_band[p, self.item_band[items]]
        pt_ext = np.append(self.pref_tags[p], np.float32(0.0))
        tg = self._tags_ext[items]
        tsum: F64 = pt_ext[tg[:, 0]].astype(np.float64)
        for j in range(1, tg.shape[1]):
            tsum += pt_ext[tg[:, j]]
        u += tsum * self._tag_inv[items]
        u += self.item_appeal[items].astype(np.float64)
        return u

    def _check_person(self, person: int) -> int:
        p = int(person)
        if not 0 <= p < self.n_people:
            raise ConfigError(f"expected `person` in [0, {self.n_people}), got {person!r}")
        return p

    def _check_items(self, items: npt.ArrayLike) -> I64:
        it = np.asarray(items)
        if it.ndim != 1 or (it.size and not np.issubdtype(it.dtype, np.integer)):
            raise ConfigError(f"expected `items` as a 1-d integer array, got shape {it.shape} of {it.dtype}")
        it64: I64 = it.astype(np.int64)
        if it64.size and (int(it64.min()) < 0 or int(it64.max()) >= self.n_items):
            raise ConfigError(
                f"expected `items` in [0, {self.n_items}), got [{int(it64.min())}, {int(it64.max())}]"
            )
        return it64

    def utility(self, person: int, items: npt.ArrayLike) -> F64:
        """Raw utility :math:`u(p, i)` of ``items`` for ``person``.

        Parameters
        ----------
        person
            Person index in ``[0, n_people)``.
        items
            Item indices, 1-d integer array.

        Returns
        -------
        numpy.ndarray
            ``float64`` array of ``len(items)``.

        Raises
        ------
        ConfigError
            If ``person`` or ``items`` are out of range.
        """
        p = self._check_person(person)
        it = self._check_items(items)
        out: F64 = self._utility_block(np.array([p], dtype=np.int64), it)[0]
        return out

    def utility_rows(self, people: npt.ArrayLike) -> F64:
        """Utility of every item for each of ``people``, shape ``(len(people), n_items)``.

        Parameters
        ----------
        people
            Person indices, 1-d integer array.
        """
        pe = np.asarray(people, dtype=np.int64)
        if pe.ndim != 1 or (pe.size and (int(pe.min()) < 0 or int(pe.max()) >= self.n_people)):
            raise ConfigError(f"expected `people` as 1-d indices in [0, {self.n_people})")
        return self._utility_block(pe, np.arange(self.n_items, dtype=np.int64))

    def standardise(self, u: npt.ArrayLike) -> F64:
        """Map raw utility to :math:`z = (u - \\mu_u) / \\sigma_u`.

        Parameters
        ----------
        u
            Raw utilities.
        """
        z: F64 = (np.asarray(u, dtype=np.float64) - self.u_mean) / self.u_sd
        return z

    @staticmethod
    def position_bias(positions: npt.ArrayLike) -> F64:
        """Examination probability of each 0-based slot position, ``1 / log2(k + 2)``.

        Parameters
        ----------
        positions
            Non-negative integer positions.

        Raises
        ------
        ConfigError
            If a position is negative.
        """
        k = np.asarray(positions, dtype=np.float64)
        if k.size and float(k.min()) < 0.0:
            raise ConfigError(f"expected `positions` >= 0, got {float(k.min())!r}")
        out: F64 = 1.0 / np.log2(k + 2.0)
        return out

    def _click_from_z(self, z: F64) -> F64:
        return _sigmoid(self.click_a + self.click_b * z)

    def _purchase_from_z(self, z: F64) -> F64:
        return self.purchase_base + self.purchase_span * _sigmoid(self.purchase_slope * (z - self.purchase_centre))

    def click_prob(self, person: int, items: npt.ArrayLike, positions: npt.ArrayLike) -> F64:
        """Probability that ``person`` clicks each of ``items`` shown at ``positions``.

        Parameters
        ----------
        person
            Person index.
        items
            Item indices, 1-d integer array.
        positions
            0-based slot position of each item (same shape as ``items``, or a scalar).

        Returns
        -------
        numpy.ndarray
            ``float64`` probabilities in (0, 1).

        Raises
        ------
        ConfigError
            On out-of-range indices or mismatched shapes.
        """
        p = self._check_person(person)
        it = self._check_items(items)
        pos = np.asarray(positions)
        if pos.ndim != 0 and pos.shape != it.shape:
            raise ConfigError(f"expected `positions` of shape {it.shape}, got {pos.shape}")
        z = self.standardise(self._utility_one(p, it))
        out: F64 = self.position_bias(pos) * self._click_from_z(z)
        return out

    def purchase_prob(self, person: int, items: npt.ArrayLike) -> F64:
        """Probability that ``person`` buys each of ``items`` given a click (0 if out of stock).

        Parameters
        ----------
        person
            Person index.
        items
            Item indices, 1-d integer array.

        Raises
        ------
        ConfigError
            On out-of-range indices.
        """
        p = self._check_person(person)
        it = self._check_items(items)
        return self._purchase_of_utility(self._utility_one(p, it), it)

    def purchase_prob_from_utility(self, utility: npt.ArrayLike, items: npt.ArrayLike) -> F64:
        """Probability of buying each of ``items`` given a click, from utilities already at hand.

        :meth:`purchase_prob` without recomputing the utility: for draws made from
        :meth:`utility_rows` (the generator carts and buys the items people view this way).

        Parameters
        ----------
        utility
            Raw utility :math:`u(p, i)` of each item, same shape as ``items``.
        items
            Item indices, 1-d integer array.

        Raises
        ------
        ConfigError
            On out-of-range indices or mismatched shapes.
        """
        it = self._check_items(items)
        u = np.asarray(utility, dtype=np.float64)
        if u.shape != it.shape:
            raise ConfigError(f"expected `utility` of shape {it.shape}, got {u.shape}")
        return self._purchase_of_utility(u, it)

    def _purchase_of_utility(self, u: F64, items: I64) -> F64:
        out: F64 = self._purchase_from_z(self.standardise(u)) * self._in_stock[items]
        return out

    def experience_click_prob(self, person: int, experience_index: int) -> float:
        """Probability that ``person`` clicks experience ``experience_index`` of the campaign.

        Parameters
        ----------
        person
            Person index.
        experience_index
            Index into the campaign placement's experiences (config order).

        Raises
        ------
        ConfigError
            On out-of-range indices.
        """
        p = self._check_person(person)
        e = int(experience_index)
        if not 0 <= e < self.n_experiences:
            raise ConfigError(f"expected `experience_index` in [0, {self.n_experiences}), got {experience_index!r}")
        lp = float(self.pref_category[p, self.experience_category[e]])
        return 1.0 / (1.0 + math.exp(-(self.experience_a + self.experience_b * lp)))

    # --- persistence --------------------------------------------------------------------

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        """Every array and scalar (as a 0-d ``float64`` array) that defines the model."""
        out: dict[str, npt.NDArray[Any]] = {name: getattr(self, name) for name in self._ARRAYS}
        for name in self._SCALARS:
            out[name] = np.array(getattr(self, name), dtype=np.float64)
        return out

    @classmethod
    def from_arrays(cls, arrays: Any) -> ResponseModel:
        """Rebuild a model from :meth:`to_arrays` output (or an opened ``truth.npz``).

        Parameters
        ----------
        arrays
            Mapping from name to array.
        """
        kw: dict[str, Any] = {name: np.asarray(arrays[name]) for name in cls._ARRAYS}
        for name in cls._SCALARS:
            kw[name] = float(np.asarray(arrays[name]))
        return cls(**kw)

    def __repr__(self) -> str:
        return (
            f"ResponseModel(n_people={self.n_people}, n_items={self.n_items}, "
            f"n_experiences={self.n_experiences}, u_mean={self.u_mean:.4g}, u_sd={self.u_sd:.4g})"
        )
