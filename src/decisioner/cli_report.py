"""``decisioner report | evaluate | plan``: experiment reports and off-policy evaluation over a
decision log file (:mod:`decisioner.decisionfile`: what ``simulate --log`` and ``replay --log``
write) or per-unit records, and experiment planning.

* ``report LOG [--experiment NAME | --holdout] [--start MS --pre-days D --cuped decisions|reward]
  [--covariate FILE] [--winsorize P] [--control V] [--weights a=0.5,b=0.5] [--ipw]``: per variant
  (by name) counts, conversion and value per unit with fixed-horizon and always-valid tests,
  Bayesian summaries, the sample-ratio check, value per decision (delta method), CUPED and
  winsorised value when asked. ``--holdout``: personalised traffic against the global holdout.
* ``evaluate --log LOG --policy SPEC``: off-policy estimates of a candidate policy.
* ``plan --baseline-rate P | --sd S [--mde D | --n N]``: sample size or minimum detectable
  effect of a two-sided test.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .cli_world import UsageError
from .errors import SchemaError

__all__ = ["COMMANDS", "add_parser", "run", "print_human"]

COMMANDS = ("report", "evaluate", "plan")
_DAY_MS = 86_400_000


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register ``report``, ``evaluate`` and ``plan`` on the CLI's subparsers."""
    sp = sub.add_parser("report", help="experiment report (lift, tests, SRM, CUPED, ratios) from a decision log")
    common(sp)
    sp.add_argument("log", help="a decision log (`simulate --log`, `replay --log`) or per-unit records "
                                "(JSON Lines or CSV: `variant`, optional `unit`, `reward`, `propensity`)")
    sp.add_argument("--experiment", default=None, help="experiment name (a decision log with several)")
    sp.add_argument("--holdout", action="store_true", help="personalised traffic against the global holdout")
    sp.add_argument("--holdout-fraction", type=float, default=None, help="the holdout's configured fraction (SRM)")
    sp.add_argument("--placement", default=None, help="with --holdout: one placement only")
    sp.add_argument("--control", default=None, help="control variant (default: `control`, else the first name)")
    sp.add_argument("--weights", default=None, help="intended split, e.g. a=0.5,b=0.5")
    sp.add_argument("--alpha", type=float, default=0.05)
    sp.add_argument("--correction", choices=["holm", "bh", "none"], default="holm")
    sp.add_argument("--start", type=int, default=None, help="analysis window start, epoch ms (decision logs)")
    sp.add_argument("--pre-days", type=float, default=None,
                    help="pre-period length before --start, days (default: everything before it)")
    sp.add_argument("--cuped", choices=["decisions", "reward"], default=None,
                    help="CUPED with each unit's pre-period decisions or reward (needs --start)")
    sp.add_argument("--covariate", default=None,
                    help="CUPED with a covariate file instead: records with `unit` (or `person`) and `value`")
    sp.add_argument("--winsorize", type=float, default=None, metavar="P",
                    help="also value capped at the P-th percentile of the positive values, e.g. 99")
    sp.add_argument("--ipw", action="store_true", help="add IPW lift from per-unit records' variant propensities")
    sp = sub.add_parser("evaluate", help="off-policy evaluation of a candidate policy against a log")
    common(sp)
    sp.add_argument("--dataset", choices=["obd"], default=None, help="run the published OPE protocol")
    sp.add_argument("--campaign", choices=["all", "men", "women"], default="all")
    sp.add_argument("--behavior", choices=["random", "bts"], default="random")
    sp.add_argument("--evaluation", choices=["random", "bts"], default="bts")
    sp.add_argument("--runs", type=int, default=30, help="bootstrap runs of the OBD protocol")
    sp.add_argument("--log", default=None, help="a decision log, or JSON Lines/CSV with content, reward, propensity")
    sp.add_argument("--placement", default=None, help="the placement of a decision log with several")
    sp.add_argument("--policy", default=None, help="candidate policy spec: JSON text or a JSON file")
    sp.add_argument("--train-fraction", type=float, default=0.5)
    sp.add_argument("--boot", type=int, default=1000, help="bootstrap resamples of the intervals")
    sp = sub.add_parser("plan", help="sample size or minimum detectable effect (two-sided test)")
    common(sp)
    sp.add_argument("--baseline-rate", type=float, default=None, help="a proportion's baseline, e.g. 0.10")
    sp.add_argument("--sd", type=float, default=None, help="a mean's standard deviation per unit")
    sp.add_argument("--baseline-mean", type=float, default=None, help="a mean's baseline (for the relative mde)")
    sp.add_argument("--mde", type=float, default=None, help="absolute effect to detect: gives the sample size")
    sp.add_argument("--n", type=float, default=None, help="units in the first group: gives the mde")
    sp.add_argument("--alpha", type=float, default=0.05)
    sp.add_argument("--power", type=float, default=0.8)
    sp.add_argument("--ratio", type=float, default=1.0, help="units of the second group per unit of the first")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Carry out ``report``, ``evaluate`` or ``plan``."""
    if args.command == "report":
        return _report(args)
    if args.command == "evaluate":
        return _evaluate(args)
    from .evaluation.power import plan

    return plan(
        baseline_rate=args.baseline_rate, baseline_mean=args.baseline_mean, sd=args.sd, mde=args.mde, n1=args.n,
        alpha=args.alpha, power=args.power, ratio=args.ratio,
    ).to_dict()


def _weights(spec: str | None, names: list[str]) -> list[float] | None:
    if not spec:
        return None
    parts = [w.split("=") for w in spec.split(",")]
    try:
        if all(len(x) == 2 for x in parts):
            wmap = {k.strip(): float(v) for k, v in parts}
            if set(wmap) != set(names):
                raise UsageError(f"--weights names {sorted(wmap)} do not match the variants {names}")
            return [wmap[n] for n in names]
        return [float(x[0]) for x in parts]
    except ValueError:
        raise UsageError(f"--weights expects NAME=WEIGHT,... or numbers, got {spec!r}") from None


def _report(args: argparse.Namespace) -> dict[str, Any]:
    from .decisionfile import is_decision_log, read_records
    from .evaluation.reports import experiment_report, units_from_records

    records = read_records(args.log)
    if not records:
        raise SchemaError(f"Expected records, got an empty file - at {args.log!r}")
    if args.cuped is not None and args.covariate is not None:
        raise UsageError("--cuped and --covariate are two covariates; give one")
    common: dict[str, Any] = {"alpha": args.alpha, "correction": args.correction, "seed": args.seed,
                              "winsorize": args.winsorize}
    if is_decision_log(records):
        return _decision_log_report(args, records, common)
    if args.holdout or args.start is not None or args.cuped is not None:
        raise UsageError("--holdout, --start and --cuped read a decision log; this file holds per-unit records")
    import numpy as np

    raw_variant, converted, value, raw_names, raw_logged = units_from_records(records)
    order = sorted(range(len(raw_names)), key=lambda i: raw_names[i])
    remap = np.empty(len(order), dtype=np.int64)
    remap[order] = np.arange(len(order))
    names = [raw_names[i] for i in order]
    variant = remap[raw_variant]
    logged = None if raw_logged is None else (remap[raw_logged[0]], raw_logged[1], raw_logged[2])
    if args.ipw and logged is None:
        raise UsageError("--ipw needs a `propensity` in every record")
    control = args.control if args.control is not None else ("control" if "control" in names else names[0])
    if control not in names:
        raise UsageError(f"--control {control!r} is not a variant; variants: {names}")
    cov = None
    if args.covariate is not None:
        seen: dict[Any, None] = {}
        for i, r in enumerate(records):
            seen.setdefault(r.get("unit", r.get("person", r.get("profile", i))), None)
        given = _covariate_map(args.covariate)
        cov = [given.get(_key(u), 0.0) for u in seen]
    rep = experiment_report(
        variant, converted, value, names, experiment=args.experiment or Path(args.log).stem, control=control,
        weights=_weights(args.weights, names), logged=logged if args.ipw else None, covariate=cov,
        covariate_name=Path(args.covariate).stem if args.covariate else "pre_period", **common,
    )
    return _strict(rep)


def _decision_log_report(
    args: argparse.Namespace, records: list[dict[str, Any]], common: dict[str, Any]
) -> dict[str, Any]:
    from .evaluation.decisions import decisions_report, experiments_in, holdout_report

    if args.ipw:
        raise UsageError("--ipw needs per-unit records with their variant's propensity; a decision log's "
                         "propensities are of the content chosen (evaluate --log scores policies with them)")
    if args.cuped is not None and args.start is None:
        raise UsageError("--cuped needs --start (the pre-period is the time before it)")
    cov: Any = args.cuped
    if args.covariate is not None:
        cov = _covariate_map(args.covariate)
        common["covariate_name"] = Path(args.covariate).stem
    window: dict[str, Any] = {"start": args.start, "covariate": cov,
                              "pre_window_ms": None if args.pre_days is None else int(args.pre_days * _DAY_MS)}
    if args.holdout:
        if not any(r.get("variant") == "holdout" for r in records):
            raise UsageError(f"--holdout: the log has no decision in the global holdout - at {args.log!r}")
        rep = holdout_report(records, placement=args.placement, holdout_fraction=args.holdout_fraction,
                             **window, **common)
    else:
        known = experiments_in(records)
        name = args.experiment
        if name is None:
            if len(known) != 1:
                raise UsageError(f"--experiment: the log has experiments {known}; name one" if known
                                 else "the log has no experiment; --holdout reports the global holdout")
            name = known[0]
        if name not in known:
            raise UsageError(f"--experiment {name!r} is not in the log; experiments: {known}")
        variants = sorted({str(r["variant"]) for r in records if r.get("experiment") == name and r.get("variant")})
        if args.control is not None and args.control not in variants:
            raise UsageError(f"--control {args.control!r} is not a variant; variants: {variants}")
        order = (["control"] if "control" in variants else []) + [v for v in variants if v != "control"]
        if args.control is not None:
            common["control"] = args.control
        common["weights"] = _weights(args.weights, order)
        rep = decisions_report(records, name, **window, **common)
    out = _strict(rep)
    out["window"] = {"start": args.start, "pre_days": args.pre_days}
    return out


def _covariate_map(path: str) -> dict[str, float]:
    from .decisionfile import read_records

    values: dict[str, float] = {}
    for i, rec in enumerate(read_records(path)):
        unit = rec.get("unit", rec.get("person"))
        if unit is None or "value" not in rec:
            raise SchemaError(f"Expected `unit` (or `person`) and `value` in every covariate record, got "
                              f"{sorted(rec)!r} - at record {i + 1} of {path!r}")
        values[_key(unit)] = float(rec["value"] or 0.0)
    return values


def _key(unit: Any) -> str:
    return str(int(unit)) if isinstance(unit, float) and unit.is_integer() else str(unit)


def _strict(rep: Any) -> dict[str, Any]:
    from .cli_json import strict

    out: dict[str, Any] = strict(rep)
    return out


def _evaluate(args: argparse.Namespace) -> dict[str, Any]:
    import msgspec
    import numpy as np

    from .warmup import warm_up

    if args.dataset is not None:
        from .evaluation.obd_protocol import ope_benchmark

        if args.log is not None or args.policy is not None:
            raise UsageError("--dataset runs the published protocol; it takes no --log or --policy")
        warm_up()
        return ope_benchmark(
            campaign=args.campaign, behavior=args.behavior, evaluation=args.evaluation,
            n_runs=args.runs, seed=args.seed if args.seed else 12345,
        )
    if args.log is None or args.policy is None:
        raise UsageError("evaluate needs --dataset obd, or both --log FILE and --policy SPEC")
    from .config import PolicySpec
    from .decisionfile import is_decision_log, read_records
    from .evaluation.ope import BanditLog, evaluate_policy

    text = Path(args.policy).read_bytes() if Path(args.policy).is_file() else args.policy.encode()
    try:
        spec = msgspec.json.decode(text, type=PolicySpec)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise SchemaError(f"Invalid policy: {exc}") from None
    records = read_records(args.log)
    if not records:
        raise SchemaError(f"Expected decisions in {args.log!r}, got none")
    if is_decision_log(records):
        placements = sorted({str(r["placement"]) for r in records})
        want = args.placement
        if want is None:
            if len(placements) != 1:
                raise UsageError(f"--placement: the log has placements {placements}; name one")
            want = placements[0]
        if want not in placements:
            raise UsageError(f"--placement {want!r} is not in the log; placements: {placements}")
        records = [r for r in records if r["placement"] == want]
    if "slot" in records[0]:
        records = [r for r in records if int(r["slot"]) == 0]
    key = "content" if "content" in records[0] else "action"
    try:
        names = sorted({str(r[key]) for r in records})
        index = {n: i for i, n in enumerate(names)}
        log = BanditLog(
            action=np.array([index[str(r[key])] for r in records], dtype=np.int64),
            reward=np.array([float(r.get("reward") or 0.0) for r in records]),
            pscore=np.array([float(r["propensity"]) for r in records]),
            n_actions=len(names),
            time=np.array([int(r.get("time", i)) for i, r in enumerate(records)], dtype=np.int64),
        )
    except KeyError as exc:
        raise SchemaError(f"Expected `{exc.args[0]}` in every decision - at {args.log!r}") from None
    out = evaluate_policy(log, spec, train_fraction=args.train_fraction, n_boot=args.boot, seed=args.seed)
    out["arms"] = names
    return out


def _num(x: Any, fmt: str) -> str:
    return "n/a" if x is None else format(x, fmt)


def print_human(command: str, out: dict[str, Any]) -> None:
    """The human-readable form of ``report``, ``evaluate`` (OBD protocol) and ``plan``."""
    if command == "plan":
        what = "rate" if out["metric"] == "proportion" else "mean"
        rel = "" if out["relative_mde"] is None else f" ({out['relative_mde']:+.2%} of the baseline)"
        print(f"plan for a {what} (two-sided, alpha {out['alpha']}, power {out['power']}): "
              f"{out['n1']:.0f} + {out['n2']:.0f} units detect {out['mde']:+.4g}{rel}")
        return
    if command == "evaluate" and "relative_error" in out:
        print(f"OPE on OBD {out['campaign']}: {out['behavior']} -> {out['evaluation']}, "
              f"ground truth {out['ground_truth']:.5f}, {out['n_runs']} runs")
        for e, r in out["relative_error"].items():
            print(f"  {e:<10} estimate {out['estimates'][e]:.5f}  "
                  f"relative error {r:.3f} +- {out['relative_error_std'][e]:.3f}")
        return
    if command != "report":
        for k, v in out.items():
            print(f"{k}: {v}")
        return
    print(f"experiment {out['experiment']} (control {out['control']}, alpha {out['alpha']}, {out['correction']})")
    print(f"  {'variant':<14}{'units':>9}{'conv':>8}{'rate':>9}{'value/unit':>12}")
    for v in out["variants"]:
        print(f"  {v['name']:<14}{v['units']:>9}{v['conversions']:>8}{v['rate']:>9.4f}{v['value_per_unit']:>12.4f}")
    for c in out["comparisons"] + out.get("winsorized", []):
        print(f"  {c['metric']:<10} {c['variant']} vs {c['control']}: lift {c['abs_lift']:+.4g} "
              f"[{c['abs_low']:+.4g}, {c['abs_high']:+.4g}] rel {_num(c['rel_lift'], '+.2%')} "
              f"p {c['p_value']:.4g} (adj {c['p_adjusted']:.4g}) always-valid p {c['seq_p_value']:.4g}")
    for c in out.get("ratios", []):
        print(f"  {c['metric']} {c['variant']} vs {c['control']}: {c['variant_ratio']:.4g} vs "
              f"{c['control_ratio']:.4g}, lift {c['abs_lift']:+.4g} [{c['abs_low']:+.4g}, {c['abs_high']:+.4g}] "
              f"p {c['p_value']:.4g} (delta method)")
    for c in out.get("cuped", []):
        print(f"  CUPED {c['metric']} ({c['covariate']}, theta {c['theta']:.4g}, rho {c['rho']:.3f}) {c['variant']} vs "
              f"{c['control']}: lift {c['abs_lift']:+.4g} [{c['abs_low']:+.4g}, {c['abs_high']:+.4g}] "
              f"(unadjusted [{c['raw_low']:+.4g}, {c['raw_high']:+.4g}], variance -{c['variance_reduction']:.1%})")
    for c in out.get("ipw", []):
        print(f"  IPW {c['variant']} vs {c['control']}: lift {c['lift']:+.4g} [{c['low']:+.4g}, {c['high']:+.4g}] "
              f"p {c['p_value']:.4g}")
    srm = out["srm"]
    print(f"  SRM: chi2 {srm['chi2']:.2f} p {srm['p_value']:.3g}{' FLAGGED' if srm['flagged'] else ''}")
