"""``decisioner privacy``: export, consent, forget, expire and the audit log on a durable
directory, each logged and audited, with --json and in words; bad input exits 1 and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from decisioner import Engine
from decisioner.catalog import Catalog
from decisioner.cli import main
from decisioner.config import load_config_dict

T0 = 1_700_000_000_000
KEY = "3c" * 16


@pytest.fixture
def durable(tmp_path: Path) -> Path:
    cfg = load_config_dict({"identity": {"hash_key": KEY}, "profiles": {"idle_retention_days": 10},
                            "placements": [{"name": "home", "kind": "recommendation", "slots": 2}]})
    eng = Engine(cfg, Catalog([{"id": f"i{j}", "category": f"c{j % 2}"} for j in range(6)]), seed=1)
    eng.durable(tmp_path / "d")
    eng.decide({"type": "view", "time": T0, "ids": {"email": "ada@example.com"}, "item": "i1"}, placement="home")
    eng.decide({"type": "view", "time": T0 + 86_400_000 * 20, "ids": {"email": "bob@example.com"}, "item": "i2"},
               placement="home")
    eng.detach_log()
    return tmp_path / "d"


def run(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0, as_json: bool = True) -> Any:
    assert main(["privacy", *argv, "--hash-key", KEY, *(["--json"] if as_json else [])]) == code
    out = capsys.readouterr()
    return json.loads(out.out) if as_json and code == 0 else out


def test_export_consent_forget_expire_and_the_audit(capsys: pytest.CaptureFixture[str], durable: Path) -> None:
    d = str(durable)
    out = run(capsys, "export", d, "--id", "email=ada@example.com", "--actor", "ticket-1")
    assert out["found"] and len(out["decisions"]) == 2 and "ada@example.com" not in json.dumps(out)
    grid = run(capsys, "consent", d, "--id", "email=ada@example.com", "--set", "marketing.email=false", "--gpc",
               "--time", str(T0 + 5), "--source", "preference-centre")
    assert grid["marketing"]["email"] is False and grid["marketing"]["web"] is True
    assert not any(grid["sale_share"].values())
    gone = run(capsys, "forget", d, "--id", "email=ada@example.com", "--whole-person", "--actor", "dpo")
    assert gone["removed"]["decisions"] == 2 and gone["removed"]["consent_history"] == len(grid["sale_share"]) + 1
    expired = run(capsys, "expire", d, "--now", str(T0 + 86_400_000 * 31), "--actor", "retention")
    assert expired["retired"] == 1  # Bob, idle for 11 days
    audit = run(capsys, "audit", d)["entries"]
    assert [(e["op"], e["actor"]) for e in audit] == [
        ("export", "ticket-1"), ("export", "cli"), ("forget", "dpo"), ("expire", "retention")]
    text = run(capsys, "audit", d, as_json=False).out
    assert "#2 at" in text and "dpo: forget persons [0] - removed" in text
    # every command went through the log: a reopened engine has all of it
    back = Engine.open(d, hash_key=KEY)
    assert len(back.audit()) == 4 and back.profile_row({"email": "bob@example.com"}) == -1
    back.detach_log()


@pytest.mark.parametrize(
    ("argv", "msg"),
    [
        (["export", "--id", "email"], "error: Expected `--id TYPE=VALUE`, got 'email' - at `--id`"),
        (["consent", "--id", "email=a@b.co", "--set", "marketing=maybe", "--time", str(T0)],
         "error: Expected `--set PURPOSE[.CHANNEL]=true|false`, got 'marketing=maybe' - at `--set`"),
        (["consent", "--id", "email=a@b.co", "--set", "marketing.fax=false", "--time", str(T0)],
         "error: Expected a consent channel in ['web', 'app', 'email', 'sms', 'push', 'phone', 'ads'], got 'fax' - "
         "at `$.consent.marketing.fax`"),
        (["forget", "--id", "email=ada@example.com", "--actor", "ada@example.com"],
         "error: Expected `actor` to name who asked without an email address or phone number (the audit log holds "
         "no identifier), got one of 15 characters"),
    ],
)
def test_bad_input_exits_1_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], durable: Path, argv: list[str], msg: str
) -> None:
    log = (durable / "events.log").read_bytes()
    cmd, *rest = argv
    out = run(capsys, cmd, str(durable), *rest, code=1, as_json=False)
    assert out.err.strip() == msg
    assert (durable / "events.log").read_bytes() == log
