"""``crmbench lint``: every defect kind on both formats, the JSON report, the shipped data.

Fixtures: ``tests/arc_fixtures/arc_conversations.jsonl`` (upstream format),
``tests/arc_fixtures/project_defects.jsonl`` and ``honesty_defects.jsonl`` (crmbench/1
lines with one defect each — or a clean twin — on the shipped seed world). The shared
upstream sample is used when it exists.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pytest_crmbench.cli import main
from pytest_crmbench.dataset.defects import KINDS
from pytest_crmbench.lint import STOCK_MIN_TURNS, lint_files, stock_phrases

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "arc_fixtures"
ARC_FILE = FIXTURES / "arc_conversations.jsonl"
PROJECT_FILE = FIXTURES / "project_defects.jsonl"
HONESTY_FILE = FIXTURES / "honesty_defects.jsonl"
SHARED_SAMPLE = (
    Path(__file__).resolve().parents[2] / "shared" / "arc-sample" / "evaluation_sample.jsonl"
)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    status = main(["lint", *args])
    return status, capsys.readouterr().out


def kinds_by_conversation(report: dict[str, Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for d in report["defects"]:
        out.setdefault(d["conversation"], set()).add(d["kind"])
    return out


def test_lint_finds_every_defect_kind_of_an_upstream_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out = run_cli(capsys, str(ARC_FILE), "--json")
    assert status == 1
    report = json.loads(out)
    assert kinds_by_conversation(report) == {
        "ARC-CLEAN-CONTACT_complex_03": {"complexity-mismatch"},
        "ARC-PLACEHOLDER_simple_04": {"placeholder", "unstated-value"},
        "ARC-UNKNOWN-TOOL_simple_05": {"unknown-tool"},
        "ARC-UNKNOWN-ARG_simple_06": {"unknown-argument"},
        "ARC-UNSTATED_simple_07": {"unstated-value"},
        "ARC-FAILING-CALL_simple_08": {"reference-call-failed"},
        "ARC-EMPTY-SEARCH_simple_09": {"empty-search"},
        "ARC-BAD-SEED_simple_10": {"invalid-seed"},
    }
    assert report["formats"] == {str(ARC_FILE): "arc"}
    stats = report["statistics"]
    assert stats["defective_conversations"] == 7 and stats["clean_conversations"] == 3
    assert stats["arc"]["upstream_complexity"] == {"simple": 8, "medium": 1, "complex": 1}
    assert stats["complexity"] == {"simple": 9, "medium": 1, "complex": 0}


def test_lint_json_report_shape(capsys: pytest.CaptureFixture[str]) -> None:
    _, out = run_cli(capsys, str(ARC_FILE), "--json")
    report = json.loads(out)
    assert set(report) >= {"files", "conversations", "defects", "counts_by_kind", "statistics"}
    assert report["files"] == [str(ARC_FILE)]
    assert report["conversations"] == 10
    for defect in report["defects"]:
        assert set(defect) == {"conversation", "turn", "kind", "detail"}
        assert defect["kind"] in KINDS
        assert defect["turn"] is None or isinstance(defect["turn"], int)
    counts = Counter(d["kind"] for d in report["defects"])
    assert report["counts_by_kind"] == dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    stats = report["statistics"]
    for key in ("complexity", "complexity_share", "workflow", "tools", "tools_present", "defects"):
        assert key in stats
    assert stats["defects"]["placeholder"] == {
        "conversations": 1,
        "turns": 2,
        "turn_share": 0.1111,
    }  # 2 of 18 turns


def test_lint_text_report_names_defects_and_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run_cli(capsys, str(ARC_FILE))
    assert status == 1
    assert "ARC-UNKNOWN-ARG_simple_06 turn 1: unknown-argument: " in out
    assert "'document_url'" in out
    assert "7 of 10 conversations cannot be scored fairly" in out
    assert "upstream (declared) complexity: simple 8 (80.0%)" in out


def test_lint_finds_every_defect_kind_of_a_project_file() -> None:
    report = lint_files([PROJECT_FILE]).as_dict()
    assert report["formats"] == {str(PROJECT_FILE): "crmbench/1"}
    assert kinds_by_conversation(report) == {
        "LINT-OK": {"duplicate-id"},
        "LINT-UNSTATED": {"unstated-value"},
        "LINT-FACT": {"fact-not-in-results"},
        "LINT-REFFAIL": {"reference-call-failed"},
        "LINT-PLACEHOLDER": {"placeholder"},
        "LINT-FORWARD": {"broken-reference"},
        "LINT-NOFIELD": {"broken-reference"},
        "LINT-COMPLEX": {"complexity-mismatch"},
        "LINT-TOOLS": {"unknown-tool", "unknown-argument"},
        "LINT-CRITERIA": {"unknown-argument", "reference-call-failed"},
    }
    turns = {(d["conversation"], d["kind"]): d["turn"] for d in report["defects"]}
    assert turns[("LINT-NOFIELD", "broken-reference")] == 2
    assert turns[("LINT-REFFAIL", "reference-call-failed")] == 1
    assert turns[("LINT-TOOLS", "unknown-argument")] == 2


def test_missing_files_are_reported_not_raised() -> None:
    """:func:`lint_files` reports a missing path as a defect; the ``crmbench lint``
    command refuses it up front instead (exit 2, see tests/test_cli.py)."""
    report = lint_files("no/such/file.jsonl")
    assert [d["kind"] for d in report.as_dict()["defects"]] == ["invalid-file"]


@pytest.mark.parametrize("text", ["", "\n  \n"], ids=["empty", "blank-lines"])
def test_an_empty_file_is_a_defect(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str
) -> None:
    """An empty file is not a clean dataset: lint says so and exits 1."""
    path = tmp_path / "empty.jsonl"
    path.write_text(text, encoding="utf-8")
    status, out = run_cli(capsys, str(path), "--json")
    assert status == 1
    report = json.loads(out)
    assert report["conversations"] == 0
    (defect,) = report["defects"]
    assert defect["conversation"] == str(path) and defect["kind"] == "invalid-file"
    assert defect["detail"].startswith("the file holds no conversation")


def test_the_shipped_datasets_lint_clean(capsys: pytest.CaptureFixture[str]) -> None:
    full, subset, holdout = (
        REPO / "cases" / "conversations.jsonl",
        REPO / "cases" / "conversations_400.jsonl",
        REPO / "cases" / "conversations_holdout.jsonl",
    )
    status, out = run_cli(capsys, str(full), str(subset), str(holdout), "--json")
    report = json.loads(out)
    assert report["defects"] == [], report["counts_by_kind"]
    assert status == 0
    assert report["conversations"] == 1900
    assert len(report["statistics"]["tools_present"]) == 28


@pytest.mark.skipif(not SHARED_SAMPLE.is_file(), reason="the shared upstream sample is absent")
def test_lint_reports_the_documented_defects_of_the_upstream_sample(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out = run_cli(capsys, str(SHARED_SAMPLE), "--json")
    assert status == 1
    report = json.loads(out)
    n = report["conversations"]
    stats = report["statistics"]["defects"]
    # placeholders in most conversations; values the user never states; empty searches;
    # upload_document's undefined document_url
    assert stats["placeholder"]["conversations"] > n / 2
    assert stats["unstated-value"]["conversations"] > n / 2
    assert stats["empty-search"]["turns"] > 0
    unknown = [d for d in report["defects"] if d["kind"] == "unknown-argument"]
    assert unknown and all("document_url" in d["detail"] for d in unknown)
    assert "crash" not in out and "import failed" not in out
    assert report["statistics"]["arc"]["conversations"] == n


# == replies that measure the work ==================================================
def test_lint_finds_each_reply_defect_planted_in_a_project_file() -> None:
    """Each line plants one defect; its ``-OK``/``-CONTENT``/``-REASON`` twin is clean."""
    report = lint_files([HONESTY_FILE]).as_dict()
    assert kinds_by_conversation(report) == {
        "HON-NOTE-AUTHOR": {"note-author-fact"},
        "HON-ECHO": {"echoed-fact"},
        "HON-NO-PRECISION": {"no-precision"},
        "HON-REFUSAL": {"refusal-without-reason"},
        "HON-FILE-TYPE": {"file-type-wording"},
        "HON-CONTACT-EMAIL": {"contact-email-ambiguity"},
    }
    assert all(d["turn"] == 1 for d in report["defects"])
    details = {d["kind"]: d["detail"] for d in report["defects"]}
    assert "'Jordan Reyes'" in details["note-author-fact"]
    assert "'Nimbus_Pricing.xlsx'" in details["file-type-wording"]
    assert "procurement@acmecorp.com" in details["contact-email-ambiguity"]
    assert "Probability must be between 1 and 99" in details["refusal-without-reason"]


def _stock_file(path: Path, n: int, opener: str) -> Path:
    """``n`` one-turn conversations that each add a note, ``opener`` on every third (the
    other words start and end with values, which are never stock phrases)."""
    lines = []
    for i in range(n):
        said = f"{opener} " if i % 3 == 0 else ""
        conv = {
            "format": "crmbench/1",
            "id": f"STOCK-{i:04d}",
            "workflow": "Notes & Collaboration",
            "complexity": "simple",
            "reference_date": "2025-10-01",
            "turns": [
                {
                    "user": f"{said}Opportunity fb656021-584c-554b-8f1c-39132804cae8 gets "
                    f"the note 'Call {i} logged.'",
                    "expected_calls": [
                        {
                            "tool": "add_note",
                            "args": {
                                "entity_type": "Opportunity",
                                "entity_id": "fb656021-584c-554b-8f1c-39132804cae8",
                                "content": f"Call {i} logged.",
                            },
                        }
                    ],
                }
            ],
        }
        lines.append(json.dumps(conv))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_stock_phrases_are_a_finding_of_the_whole_file(tmp_path: Path) -> None:
    path = _stock_file(tmp_path / "stock.jsonl", STOCK_MIN_TURNS, "Cool, thanks!")
    report = lint_files([path]).as_dict()
    assert [(d["conversation"], d["kind"], d["turn"]) for d in report["defects"]] == [
        (str(path), "stock-phrase", None)
    ]
    assert "opener 'cool thanks' on 167 of 500 turns" in report["defects"][0]["detail"]
    assert report["statistics"]["defective_conversations"] == 0  # a style finding
    # Values are not wording: names, numbers and the like never count as a stock phrase.
    users = [f"Maya Patel owns deal {i} in Negotiation" for i in range(STOCK_MIN_TURNS)]
    users += ["Cool, thanks! Maya Patel owns it in Negotiation"] * STOCK_MIN_TURNS
    assert stock_phrases(users) == [("opener", "cool thanks", STOCK_MIN_TURNS)]
    # Too few turns to judge a share.
    assert stock_phrases(["Cool, thanks! Clone it."] * (STOCK_MIN_TURNS - 1)) == []
