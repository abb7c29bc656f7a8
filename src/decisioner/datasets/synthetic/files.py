"""A synthetic world on disk: :func:`write_world` and :func:`load_world`.

Files written by :func:`write_world` (all byte-identical for equal specs):

``catalog.jsonl``
    One item per line: ``id, title, category, brand, colour, tags, price, inventory``.
``events.jsonl``
    One event payload per line, sorted by time, each valid for
    :func:`decisioner.schemas.decode_event`.
``truth.npz``
    The true person of each event (``event_person``), the identifier truth (``id_type``,
    ``id_value``, ``id_person``; ``spelling_*``: every spelling seen in events and the
    identifier it spells; ``shared_*``: shared household devices) and the arrays of the
    response model (``item_*``, ``pref_*``, ``experience_category`` and scalar parameters).
``truth.json``
    Small metadata: the :class:`WorldSpec`, counts, vocabularies, experiences, file list.
``config.toml``
    An engine configuration for the world, loadable with :func:`decisioner.config.load_config`.
"""

from __future__ import annotations

import io
import tomllib
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt

from ...errors import ConfigError
from .response import ResponseModel
from .spec import PRICE_BANDS, WorldSpec
from .world import World, gc_paused

__all__ = ["FORMAT_VERSION", "write_world", "load_world"]

#: Version of the on-disk world format (``truth.json`` / ``truth.npz`` layout).
FORMAT_VERSION: Final = 1
_FILES: Final = ("catalog.jsonl", "events.jsonl", "truth.npz", "truth.json", "config.toml")


def _toml_str(s: str) -> str:
    return msgspec.json.encode(s).decode()  # JSON string escapes are valid TOML basic strings


def _config_toml(config: dict[str, Any], seed: int) -> str:
    """Render the world's config mapping (fixed shape, see ``_make_config``) as TOML."""
    ident = config["identity"]
    catalog = config["catalog"]
    lines = [
        f"# decisioner engine configuration for the synthetic world with seed {seed}.",
        "",
        "[identity]",
        "# Synthetic worlds derive their hashing key from the seed (blake2b), so a world and its",
        "# replays are reproducible. Production deployments never put the key in a file: omit",
        "# hash_key and set the DECISIONER_HASH_KEY environment variable instead.",
        f"hash_key = {_toml_str(ident['hash_key'])}",
        "",
        "[catalog]",
        "facets = [" + ", ".join(_toml_str(f) for f in catalog["facets"]) + "]",
        "price_bands = [" + ", ".join(repr(float(b)) for b in catalog["price_bands"]) + "]",
    ]
    for pl in config["placements"]:
        lines += ["", "[[placements]]"]
        for key in ("name", "kind"):
            lines.append(f"{key} = {_toml_str(pl[key])}")
        if "slots" in pl:
            lines.append(f"slots = {int(pl['slots'])}")
        pol = pl["policy"]
        lines += ["", "[placements.policy]"]
        for key, val in pol.items():
            lines.append(f"{key} = {_toml_str(val) if isinstance(val, str) else repr(val)}")
        for ex in pl.get("experiences", []):
            facets = ", ".join(f"{k} = {_toml_str(v)}" for k, v in ex["facets"].items())
            lines += ["", "[[placements.experiences]]", f"id = {_toml_str(ex['id'])}", f"facets = {{ {facets} }}"]
    for name, attr in config.get("attributes", {}).items():
        lines += ["", f"[attributes.{name}]"]
        lines += [f"{k} = {_toml_str(v) if isinstance(v, str) else repr(v)}" for k, v in attr.items()]
    for section in ("engagement", "pulse", "activity"):
        if section in config:
            lines += ["", f"[{section}]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in config[section].items()]
    return "\n".join(lines) + "\n"


def _toml_value(v: Any) -> str:
    if isinstance(v, str):
        return _toml_str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return str(v).lower() if isinstance(v, bool) else repr(v)


def _write_npz(path: Path, arrays: dict[str, npt.NDArray[Any]]) -> None:
    """``numpy.savez_compressed`` with fixed zip timestamps, so equal arrays give equal bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arr, order="C"), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=1)


def _strings(values: list[str]) -> npt.NDArray[np.bytes_]:
    return np.array([v.encode() for v in values], dtype=np.bytes_) if values else np.zeros(0, dtype="S1")


def write_world(world: World, out_dir: str | Path) -> Path:
    """Write a world to ``out_dir`` (created if needed); equal worlds give equal bytes.

    Parameters
    ----------
    world
        The world to write.
    out_dir
        Target directory.

    Returns
    -------
    pathlib.Path
        The directory.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    enc = msgspec.json.Encoder()
    buf = bytearray()
    for row in world.items:
        enc.encode_into(row, buf, len(buf))
        buf += b"\n"
    (out / "catalog.jsonl").write_bytes(bytes(buf))
    buf = bytearray()
    for e in world.events:
        enc.encode_into(e, buf, len(buf))
        buf += b"\n"
    (out / "events.jsonl").write_bytes(bytes(buf))

    ids = world.identifiers
    shared = sorted(world.shared_identifiers.items())
    index = {(t, v): i for i, (t, v, _) in enumerate(ids)}
    shared_users = [(index[key], u) for key, users in shared for u in users[1:]]
    arrays: dict[str, npt.NDArray[Any]] = {
        "event_person": np.asarray(world.event_person, dtype=np.int32),
        "id_type": _strings([t for t, _, _ in ids]),
        "id_value": _strings([v for _, v, _ in ids]),
        "id_person": np.array([p for _, _, p in ids], dtype=np.int32),
        "spelling_value": _strings([v for _, v, _ in world.spellings]),
        "spelling_identifier": np.array([i for _, _, i in world.spellings], dtype=np.int32),
        "shared_identifier": np.array([i for i, _ in shared_users], dtype=np.int32),
        "shared_user": np.array([u for _, u in shared_users], dtype=np.int32),
        **world.response.to_arrays(),
    }
    _write_npz(out / "truth.npz", arrays)
    cfg = world.config
    exps = cfg["placements"][1]["experiences"] if len(cfg["placements"]) > 1 else []
    meta = {
        "format": "decisioner-synthetic-world",
        "version": FORMAT_VERSION,
        # `visit_shape` only when set: default worlds stay byte-identical to those written before it
        "spec": {k: v for k, v in asdict(world.spec).items() if not (k == "visit_shape" and v is None)},
        "n_people": world.spec.n_people,
        "n_items": len(world.items),
        "n_events": len(world.events),
        "n_identifiers": len(ids),
        "price_bands": list(PRICE_BANDS),
        "vocabularies": world.vocabularies,
        "experiences": [{"id": e["id"], "category": e["facets"]["category"]} for e in exps],
        "files": list(_FILES),
    }
    (out / "truth.json").write_bytes(msgspec.json.format(msgspec.json.encode(meta), indent=2) + b"\n")
    (out / "config.toml").write_text(_config_toml(world.config, world.spec.seed), encoding="utf-8")
    return out


_ROWS: Final = msgspec.json.Decoder(list[dict[str, Any]])


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    try:
        with gc_paused():
            return _ROWS.decode(b"[" + b",".join(lines) + b"]")
    except msgspec.DecodeError as exc:
        raise ConfigError(f"Invalid JSON lines in {str(path)!r}: {exc}") from None


def load_world(path: str | Path) -> World:
    """Read a world written by :func:`write_world`.

    Parameters
    ----------
    path
        The world directory.

    Returns
    -------
    World
        With ``events`` as dicts, the exact response model and ``config_path`` set.

    Raises
    ------
    ConfigError
        If a file is missing or the format version is unknown.
    """
    d = Path(path)
    for name in _FILES:
        if not (d / name).is_file():
            raise ConfigError(f"expected a world directory with `{name}`, got none in {str(d)!r}")
    meta = msgspec.json.decode((d / "truth.json").read_bytes())
    if not isinstance(meta, dict) or meta.get("version") != FORMAT_VERSION:
        got = meta.get("version") if isinstance(meta, dict) else None
        raise ConfigError(f"expected world format version {FORMAT_VERSION}, got {got!r} in {str(d / 'truth.json')!r}")
    spec = WorldSpec(**meta["spec"])
    items = _read_jsonl(d / "catalog.jsonl")
    events = _read_jsonl(d / "events.jsonl")
    with np.load(d / "truth.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    types = [b.decode() for b in arrays["id_type"].tolist()]
    values = [b.decode() for b in arrays["id_value"].tolist()]
    identifiers = list(zip(types, values, arrays["id_person"].tolist()))
    spell_idx = arrays["spelling_identifier"].tolist()
    spellings = [
        (types[i], v.decode(), i) for v, i in zip(arrays["spelling_value"].tolist(), spell_idx)
    ]
    shared: dict[tuple[str, str], tuple[int, ...]] = {}
    for i, u in zip(arrays["shared_identifier"].tolist(), arrays["shared_user"].tolist()):
        key = (types[i], values[i])
        shared[key] = (*shared.get(key, (int(identifiers[i][2]),)), int(u))
    config = tomllib.loads((d / "config.toml").read_text(encoding="utf-8"))
    return World(
        spec=spec,
        items=items,
        events=events,
        event_person=np.ascontiguousarray(arrays["event_person"], dtype=np.int32),
        identifiers=[(t, v, int(p)) for t, v, p in identifiers],
        shared_identifiers=shared,
        spellings=spellings,
        vocabularies={k: list(v) for k, v in meta["vocabularies"].items()},
        response=ResponseModel.from_arrays(arrays),
        config=config,
        config_path=d / "config.toml",
    )
