"""Build tiny benchmark projects inside ``pytester.path`` and read what a run left behind.

A project mirrors the real layout: ``cases/`` (the shipped test module + a JSONL dataset)
and ``golden/`` (the shipped test module + golden files), so the plugin sees a benchmark
run exactly as a user's checkout would give it.

Most tests use a frozen snapshot of the starter data (``data/``: 12 hand-written
conversations and 8 golden cases) so their expectations do not move when the shipped
dataset is regenerated; ``shipped=True`` takes the real ``cases/`` and ``golden/`` files.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_crmbench.results.packing import report_items

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().with_name("data")
SNAPSHOT_DATASET = DATA / "conversations.jsonl"
SNAPSHOT_GOLDEN = DATA / "create_new_opportunity.json"

# What the snapshot holds (the assertions rely on it).
CONVERSATION_IDS = tuple(f"CONV-{n:04d}" for n in range(1, 13))
GOLDEN_SANDBOX = ("CNO-001", "CNO-002", "CNO-101", "CNO-102", "CNO-103", "CNO-104")
GOLDEN_AGENT = ("CNO-201", "CNO-202")
ALL_ITEMS = len(CONVERSATION_IDS) + len(GOLDEN_SANDBOX) + len(GOLDEN_AGENT)

# Plugins the tiny projects do not need (hypothesis' re-imports hypothesis on every
# in-process run: ~1.5 s each).
BASE = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
# The fast store, for everything where PostgreSQL is not the point.
MEMORY = ("--crm-backend", "memory", *BASE)


def snapshot_lines(ids: Iterable[str] | None = None) -> list[str]:
    """JSONL lines of the snapshot dataset, optionally only the given conversation ids."""
    lines = [ln for ln in SNAPSHOT_DATASET.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if ids is None:
        return lines
    wanted = set(ids)
    return [ln for ln in lines if json.loads(ln)["id"] in wanted]


def make_project(
    pytester: pytest.Pytester,
    *,
    conversations: Sequence[str] | None = None,
    golden: bool = True,
    shipped: bool = False,
    agents: bool = True,
) -> Path:
    """Lay out ``cases/`` (+ ``golden/``) in ``pytester.path``; returns the project root.

    ``conversations``: ids of the snapshot conversations to keep (all by default).
    ``shipped``: use the repository's real dataset and golden files instead.
    ``agents``: copy :mod:`plugin_support.agents` as ``crm_agents.py`` (``--agent
    crm_agents:Name``).
    A root ``conftest.py`` puts the project root on ``sys.path`` (as in the real repo).
    """
    root = pytester.path
    cases = root / "cases"
    cases.mkdir(exist_ok=True)
    shutil.copy(REPO / "cases" / "test_conversations.py", cases / "test_conversations.py")
    if shipped:
        shutil.copy(REPO / "cases" / "conversations.jsonl", cases / "conversations.jsonl")
    else:
        lines = snapshot_lines(conversations)
        (cases / "conversations.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if golden:
        gdir = root / "golden"
        gdir.mkdir(exist_ok=True)
        shutil.copy(REPO / "golden" / "test_golden.py", gdir / "test_golden.py")
        sources = sorted((REPO / "golden").glob("*.json")) if shipped else [SNAPSHOT_GOLDEN]
        for src in sources:
            shutil.copy(src, gdir / src.name)
    (root / "conftest.py").write_text('"""Project root conftest (tiny)."""\n', encoding="utf-8")
    if agents:
        shutil.copy(Path(__file__).with_name("agents.py"), root / "crm_agents.py")
        _write_answers(root)
    return root


def _write_answers(root: Path) -> None:
    """``answers.json`` for the honest ``KnowsTheAnswers`` test agent: per user message,
    the calls, facts and whether it is refused (from the project's data, written once)."""
    answers: dict[str, dict[str, Any]] = {}
    for path in sorted((root / "cases").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                for turn in json.loads(line)["turns"]:
                    answers[turn["user"]] = {
                        "calls": turn["expected_calls"],
                        "facts": turn.get("reply", {}).get("must_mention", []),
                        "failure": turn.get("expect") == "failure",
                    }
    for path in sorted((root / "golden").glob("*.json")):
        for case in json.loads(path.read_text(encoding="utf-8"))["cases"]:
            if case.get("user"):
                answers[case["user"]] = {
                    "calls": case["expected_calls"],
                    "facts": case.get("must_mention", []),
                    "failure": case.get("expect") == "failure",
                }
    (root / "answers.json").write_text(json.dumps(answers), encoding="utf-8")


def stream_rows(path: Path | str) -> list[dict[str, Any]]:
    """The item results of a ``--crm-results`` stream (not the runs' header lines)."""
    rows = [json.loads(x) for x in Path(path).read_text(encoding="utf-8").splitlines() if x]
    return [r for r in rows if "case_id" in r]


def load_report(path: Path | str) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def outcomes(report: dict[str, Any]) -> dict[str, str]:
    """Test id (the part in brackets) -> pytest outcome, from a pytest-json-report file."""
    return {t["nodeid"].split("[", 1)[1].rstrip("]"): t["outcome"] for t in report["tests"]}


def metadata(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Case id -> the item's ``crmbench`` metadata (the first trial seen)."""
    out: dict[str, dict[str, Any]] = {}
    for meta in report_items(report):
        out.setdefault(meta["case_id"], dict(meta))
    return out


def comparable_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary without timing-dependent keys."""
    return {k: v for k, v in summary.items() if k not in ("slowest",)}


def last_line(output: Sequence[str]) -> str:
    return next(line for line in reversed(output) if line.strip())
