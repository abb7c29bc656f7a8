"""The whole configuration document: :class:`EngineConfig` (one section per stage, plus the
input limits), the checks across sections, and loading it from a mapping, TOML or JSON."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from ..errors import ConfigError
from ._spec import SPEC, check
from .activity import ActivitySpec
from .attributes import AttributeSpec, check_attribute_names
from .catalog import CatalogSpec, ScoringSpec
from .consent import ConsentSpec
from .decisionlog import DecisionLogSpec
from .engagement import EngagementSpec, PulseSpec
from .experiments import ExperimentSpec, HoldoutSpec, check_experiments
from .identity import IdentitySpec
from .outbound import OutboundSpec
from .outcomes import OutcomesSpec
from .placements import PlacementSpec
from .profiles import ProfileSpec
from .segments import check_segments
from .state import StateSpec

__all__ = ["LimitsSpec", "EngineConfig", "load_config_dict", "load_config"]


class LimitsSpec(Struct, **SPEC):
    """Input limits (safe defaults) and bounded in-memory buffers."""

    max_payload_bytes: Annotated[int, Meta(ge=256, le=64 * 1024 * 1024)] = 65_536
    max_identifiers: Annotated[int, Meta(ge=1, le=32)] = 16
    max_attributes: Annotated[int, Meta(ge=0, le=64)] = 32
    max_pending_decisions: Annotated[int, Meta(ge=1, le=100_000_000)] = 1_000_000


class EngineConfig(Struct, **SPEC):
    """The whole engine configuration."""

    identity: IdentitySpec = IdentitySpec()
    profiles: ProfileSpec = ProfileSpec()
    consent: ConsentSpec = ConsentSpec()
    catalog: CatalogSpec = CatalogSpec()
    scoring: ScoringSpec = ScoringSpec()
    placements: list[PlacementSpec] = []
    limits: LimitsSpec = LimitsSpec()
    outcomes: OutcomesSpec = OutcomesSpec()
    decision_log: DecisionLogSpec = DecisionLogSpec()
    experiments: list[ExperimentSpec] = []
    holdout: HoldoutSpec | None = None
    attributes: dict[str, AttributeSpec] = {}
    engagement: EngagementSpec = EngagementSpec()
    pulse: PulseSpec = PulseSpec()
    activity: ActivitySpec = ActivitySpec()
    segments: dict[str, str] = {}
    outbound: OutboundSpec = OutboundSpec()
    state: StateSpec = StateSpec()

    def __post_init__(self) -> None:
        names = [p.name for p in self.placements]
        check(
            len(set(names)) == len(names),
            f"expected unique placement names, got {names!r} for `placements`",
        )
        check_experiments(self.experiments, {p.name: p for p in self.placements})
        if self.attributes:
            idt = self.identity
            check_attribute_names(self.attributes, set(idt.types) | {s.name for s in idt.identifiers})
        if self.pulse.enabled:
            region = self.attributes.get(self.pulse.region_attribute)
            check(
                region is not None and region.type == "category",
                f"expected `pulse.region_attribute` to name a declared `category` attribute, got "
                f"{self.pulse.region_attribute!r} for `pulse`",
            )
        self._check_segments()
        tz = self.outbound.timezone_attribute
        if tz is not None:
            spec = self.attributes.get(tz)
            check(spec is not None and spec.type == "category",
                  f"expected `outbound.timezone_attribute` to name a declared `category` attribute, got {tz!r} "
                  "for `outbound`")

    def _check_segments(self) -> None:
        """Segment syntax, and every segment a placement, rule or experiment names is declared."""
        check_segments(self.segments)
        known = sorted(self.segments)
        named = [(p.segment, f"placement {p.name!r}") for p in self.placements]
        named += [(r.segment, f"a rule of placement {p.name!r}") for p in self.placements for r in p.rules]
        named += [(e.audience, f"experiment {e.name!r}") for e in self.experiments]
        named += [
            (x.segment, f"experience {x.id!r} of placement {p.name!r}") for p in self.placements for x in p.experiences
        ]
        for seg, where in named:
            check(seg is None or seg in self.segments, f"expected a segment in {known!r}, got {seg!r} ({where})")


def load_config_dict(data: dict[str, Any]) -> EngineConfig:
    """Validate a configuration mapping.

    Raises
    ------
    ConfigError
        With the path of the offending field.
    """
    try:
        return msgspec.convert(data, EngineConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"Invalid config: {exc}") from None


def load_config(path: str | Path) -> EngineConfig:
    """Load a TOML (``.toml``) or JSON configuration file."""
    p = Path(path)
    try:
        text = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(p)!r}: {exc.strerror}") from None
    if p.suffix == ".json":
        try:
            data = msgspec.json.decode(text)
        except msgspec.DecodeError as exc:
            raise ConfigError(f"Invalid config JSON in {str(p)!r}: {exc}") from None
        except RecursionError:
            raise ConfigError(f"Invalid config JSON in {str(p)!r}: nested too deeply") from None
    else:
        try:
            data = tomllib.loads(text.decode())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Invalid config TOML in {str(p)!r}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"expected a table at the top of {str(p)!r}, got {type(data).__name__}")
    return load_config_dict(data)
