"""``crmbench audit``: degraded oracles are caught, cheaters stay under their bounds on
the shipped data, and the audit itself fails on a dataset that lets a cheater through."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_crmbench.audit import (
    DEGRADATIONS,
    audit,
    default_agents,
    format_report,
)
from pytest_crmbench.cli import main
from pytest_crmbench.dataset import load_dataset
from pytest_crmbench.dataset.golden import as_conversation, load_golden
from pytest_crmbench.locations import shipped_conversations, shipped_golden


@pytest.fixture(scope="module")
def shipped_report():  # type: ignore[no-untyped-def]
    convs = list(load_dataset(shipped_conversations()).conversations)
    golden = sorted(shipped_golden().glob("*.json"))
    convs += [as_conversation(gf, gc) for gf, gc in load_golden(golden) if gc.family == "agent"]
    return audit(convs)


def test_the_shipped_data_passes_the_audit(shipped_report) -> None:  # type: ignore[no-untyped-def]
    assert shipped_report.problems == [], format_report(shipped_report)
    rows = {a.name: a for a in shipped_report.agents}
    assert rows["replay (oracle)"].conversation_rate == 1.0
    for degradation in DEGRADATIONS:
        row = rows[degradation.kind]
        assert row.applied > 20, degradation.kind  # the mutation really happened, often
        assert row.caught == row.applied and not row.escaped
    for name, kind, _ in default_agents():
        if kind == "cheater":
            assert rows[name].conversation_rate <= 0.01 and rows[name].turn_rate <= 0.05, name


def _one_turn_dataset(tmp_path: Path, conv_id: str, user: str, call: dict[str, Any]) -> Path:
    """A dataset of one single-turn conversation with one reference call."""
    line = {
        "format": "crmbench/1",
        "id": conv_id,
        "workflow": "Opportunity Management",
        "complexity": "simple",
        "reference_date": "2025-10-01",
        "turns": [{"user": user, "expected_calls": [call]}],
    }
    path = tmp_path / f"{conv_id.lower()}.jsonl"
    path.write_text(json.dumps(line) + "\n")
    return path


def test_the_audit_fails_a_dataset_a_cheater_can_pass(tmp_path: Path) -> None:
    """A read-only conversation with no fact to convey: any agent passes it."""
    path = _one_turn_dataset(
        tmp_path,
        "WEAK-1",
        "Look up the deals in Negotiation for me.",
        {"tool": "opportunity_search", "args": {"stage": "Negotiation"}},
    )
    report = audit(load_dataset(path).conversations)
    assert any(p.startswith("noop: passes 100.0% of the conversations") for p in report.problems)
    assert main(["audit", f"--dataset={path}", "--json"]) == 1


def test_a_conversation_the_oracle_cannot_run_is_reported(tmp_path: Path) -> None:
    """A dataset defect (a reference call the CRM refuses) is a problem, not a silent skip."""
    deal = "00000000-0000-4000-8000-000000000000"
    path = _one_turn_dataset(
        tmp_path,
        "BROKEN-1",
        f"Move the deal {deal} to Negotiation.",
        {
            "tool": "modify_opportunity",
            "args": {"opportunity_id": deal, "updates": {"stage": "Negotiation"}},
        },
    )
    report = audit(load_dataset(path).conversations)
    assert any("BROKEN-1" in p and "dataset defect" in p for p in report.problems)
