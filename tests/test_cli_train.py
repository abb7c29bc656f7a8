"""``decisioner train``: the JSON report, the model directory, and bad input (exit codes,
nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from decisioner.cli import main
from decisioner.ranking.features import schema


def test_train_json_writes_the_model_dir(small_world: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "models" / "m"
    code = main(["train", "--world", small_world, "--out", str(out), "--max-events", "12000", "--trees", "10",
                 "--candidates", "20", "--json", "--seed", "3"])
    assert code == 0
    rep = json.loads(capsys.readouterr().out)
    assert sorted(p.name for p in out.iterdir()) == ["features.json", "metrics.json", "model.txt", "provenance.json"]
    assert json.loads((out / "features.json").read_text()) == schema()
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["events"] == 12000 and prov["seed"] == 3 and len(prov["source"]["blake2b"]) == 64
    assert prov["time"]["split"] == rep["split_time"] and prov["params"]["num_threads"] == 2
    assert json.loads((out / "metrics.json").read_text())["ndcg@10"] == rep["ndcg@10"]
    assert (out / "model.txt").read_text().startswith("tree")


def test_train_table(small_world: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--world", small_world, "--out", str(tmp_path / "m"), "--max-events", "8000",
                 "--trees", "5", "--objective", "binary"]) == 0
    text = capsys.readouterr().out
    assert "trained 5 trees (binary)" in text and "ndcg@10" in text and "difference [95% CI]" in text


@pytest.mark.parametrize(("args", "message", "code"), [
    (["--world", "{tmp}/nope"], "error: Expected a world directory with config.toml", 1),
    (["--world", "{world}", "--objective", "pairwise"],
     "error: Expected `objective` to be one of ['lambdarank', 'binary'], got 'pairwise' - at `--objective`", 1),
    (["--log", "{tmp}/events.log"], "error: Expected an event log file, got", 1),
    (["--world", "{empty}"], "error: Expected events in", 1),
    (["--world", "{views}"], "error: Expected interactions with items (add_to_cart, click, purchase)", 1),
])
def test_train_bad_input(small_world: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                         message: str, code: int) -> None:
    for name, keep in (("empty", lambda e: False), ("views", lambda e: e["type"] == "view")):
        d = tmp_path / name
        d.mkdir()
        for f in ("config.toml", "catalog.jsonl"):
            (d / f).write_bytes(Path(small_world, f).read_bytes())
        lines = Path(small_world, "events.jsonl").read_text().splitlines()[:3000]
        (d / "events.jsonl").write_text("".join(x + "\n" for x in lines if keep(json.loads(x))))
    fmt = {"tmp": str(tmp_path), "world": small_world, "empty": str(tmp_path / "empty"),
           "views": str(tmp_path / "views")}
    out = tmp_path / "out"
    assert main(["train", *[a.format(**fmt) for a in args], "--out", str(out)]) == code
    assert capsys.readouterr().err.startswith(message)
    assert not out.exists()


def test_train_from_an_engines_event_log(
    small_world: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--log``: a durable directory's event log (its snapshot gives config and catalog; the
    secret comes from the environment) trains like the world it recorded."""
    import re

    from decisioner import Engine

    key = re.search(r'hash_key = "([0-9a-f]+)"', (Path(small_world) / "config.toml").read_text())
    assert key is not None
    e = Engine.from_world(small_world)
    e.durable(tmp_path / "d")
    for line in (Path(small_world) / "events.jsonl").read_text().splitlines()[:12000]:
        e.track(json.loads(line))
    e.detach_log()
    monkeypatch.setenv("TRAIN_TEST_KEY", key.group(1))
    out = tmp_path / "m"
    assert main(["train", "--log", str(tmp_path / "d" / "events.log"), "--hash-key-env", "TRAIN_TEST_KEY",
                 "--out", str(out), "--trees", "5", "--candidates", "20", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["queries"]["train"] > 0 and rep["provenance"]["source"]["kind"] == "log"
    assert (out / "model.txt").is_file()
    # the same events from the world give the same queries
    assert main(["train", "--world", small_world, "--max-events", "12000", "--out", str(tmp_path / "w"),
                 "--trees", "5", "--candidates", "20", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["queries"] == rep["queries"]
