"""Upstream (Arc) files through pytest: ``--crm-dataset arc.jsonl`` end to end.

Each test lays out a tiny project (the shipped ``cases/test_conversations.py`` plus an
upstream-format file) in ``pytester.path`` and runs pytest in a subprocess.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from plugin_support.project import (
    BASE,
    CONVERSATION_IDS,
    SNAPSHOT_DATASET,
    load_report,
    metadata,
)

from pytest_crmbench.dataset import load_dataset

REPO = Path(__file__).resolve().parents[1]
ARC_FILE = Path(__file__).resolve().parent / "arc_fixtures" / "arc_conversations.jsonl"
SHARED_SAMPLE = (
    Path(__file__).resolve().parents[2] / "shared" / "arc-sample" / "evaluation_sample.jsonl"
)
CLEAN = {"ARC-CLEAN-SEARCH_simple_01", "ARC-CLEAN-QUOTE_medium_02", "ARC-CLEAN-CONTACT_complex_03"}
DEFECT_OF = {
    "ARC-PLACEHOLDER_simple_04": "placeholder",
    "ARC-UNKNOWN-TOOL_simple_05": "unknown-tool",
    "ARC-UNKNOWN-ARG_simple_06": "unknown-argument",
    "ARC-UNSTATED_simple_07": "unstated-value",
    "ARC-FAILING-CALL_simple_08": "reference-call-failed",
    "ARC-EMPTY-SEARCH_simple_09": "empty-search",
    "ARC-BAD-SEED_simple_10": "invalid-seed",
}


def make_arc_project(pytester: pytest.Pytester, source: Path = ARC_FILE) -> None:
    cases = pytester.path / "cases"
    cases.mkdir(exist_ok=True)
    shutil.copy(REPO / "cases" / "test_conversations.py", cases / "test_conversations.py")
    shutil.copy(source, pytester.path / "arc.jsonl")
    (pytester.path / "conftest.py").write_text('"""Project root conftest."""\n')


def run(pytester: pytest.Pytester, *args: str, backend: str = "memory") -> Any:
    return pytester.runpytest_subprocess(
        *BASE,
        "--strict-markers",
        "--crm-backend",
        backend,
        "--crm-dataset",
        "arc.jsonl",
        "--json-report",
        "--json-report-file=r.json",
        *args,
        timeout=300,
    )


def by_case(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Case id -> {outcome, reason} from the pytest-json-report file."""
    out = {}
    for test in report["tests"]:
        case = test["nodeid"].split("[", 1)[1].rstrip("]")
        setup = test.get("setup", {})
        out[case] = {"outcome": test["outcome"], "reason": str(setup.get("longrepr", ""))}
    return out


def check_replay_run(result: Any, pytester: pytest.Pytester, backend: str) -> None:
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-3000:]
    result.assert_outcomes(passed=3, skipped=7)
    report = load_report(pytester.path / "r.json")
    cases = by_case(report)
    assert {c for c, v in cases.items() if v["outcome"] == "passed"} == CLEAN
    for case, kind in DEFECT_OF.items():
        assert cases[case]["outcome"] == "skipped"
        assert f"arc defect: {kind} (" in cases[case]["reason"], cases[case]["reason"]
    assert report["crmbench"]["backend"] == backend
    summary = report["crmbench"]["summary"]
    assert (summary["passed"], summary["failed"], summary["skipped"]) == (3, 0, 7)
    # Imported conversations run on an empty world: the seed world holds six Negotiation
    # deals, the conversation's own seed one.
    search = metadata(report)["ARC-CLEAN-SEARCH_simple_01"]["turns"][2]["calls"][0]
    assert search["tool"] == "opportunity_search" and len(search["result"]) == 1


def test_replay_passes_clean_imported_conversations_and_skips_defective_ones(
    pytester: pytest.Pytester,
) -> None:
    make_arc_project(pytester)
    check_replay_run(run(pytester, "-rs"), pytester, "memory")


@pytest.mark.postgres
def test_replay_on_postgres(pytester: pytest.Pytester) -> None:
    make_arc_project(pytester)
    check_replay_run(run(pytester, backend="postgres"), pytester, "postgres")


def test_arc_defects_xfail_option_and_ini(pytester: pytest.Pytester) -> None:
    make_arc_project(pytester)
    result = run(pytester, "--crm-arc-defects", "xfail", "-rx")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=3, xfailed=7)
    result.stdout.fnmatch_lines(["*XFAIL*[[]NOTRUN[]] arc defect: unknown-tool (turn 1:*"])
    pytester.makeini("[pytest]\ncrmbench_arc_defects = xfail\n")
    run(pytester).assert_outcomes(passed=3, xfailed=7)
    pytester.makeini("[pytest]\ncrmbench_arc_defects = maybe\n")
    bad = run(pytester)
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--crm-arc-defects: 'maybe' is not one of skip, xfail*"])


def test_noop_passes_none_of_the_clean_imported_conversations(pytester: pytest.Pytester) -> None:
    make_arc_project(pytester)
    result = run(pytester, "--agent", "noop")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=3, skipped=7)
    cases = by_case(load_report(pytester.path / "r.json"))
    assert {c for c, v in cases.items() if v["outcome"] == "failed"} == CLEAN


def test_the_arc_marker_selects_imported_conversations(pytester: pytest.Pytester) -> None:
    make_arc_project(pytester)
    run(pytester, "-m", "arc and quote_details").assert_outcomes(passed=1, deselected=9)


def test_a_malformed_upstream_line_is_a_collection_error(pytester: pytest.Pytester) -> None:
    make_arc_project(pytester)
    lines = ARC_FILE.read_text(encoding="utf-8").splitlines()
    (pytester.path / "arc.jsonl").write_text(
        lines[0] + "\n" + lines[1][:-5] + "\n", encoding="utf-8"
    )
    result = run(pytester)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*arc.jsonl:2: invalid JSON:*"])


@pytest.mark.skipif(not SHARED_SAMPLE.is_file(), reason="the shared upstream sample is absent")
def test_the_upstream_sample_runs_without_crash(pytester: pytest.Pytester) -> None:
    """Every item passes or is skipped naming its defect; with replay every imported
    conversation without a defect passes."""
    make_arc_project(pytester, SHARED_SAMPLE)
    dataset = load_dataset(SHARED_SAMPLE)
    clean = {
        c.id for c in dataset.conversations if not any(d.blocking for d in dataset.defects[c.id])
    }
    assert clean  # the sample has at least one usable conversation
    result = run(pytester)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-3000:]
    cases = by_case(load_report(pytester.path / "r.json"))
    assert len(cases) == len(dataset.conversations)
    assert {c for c, v in cases.items() if v["outcome"] == "passed"} == clean
    for case, v in cases.items():
        if case not in clean:
            assert v["outcome"] == "skipped" and "arc defect: " in v["reason"], (case, v)


def test_a_mixed_run_keeps_each_conversation_on_its_own_world(pytester: pytest.Pytester) -> None:
    """Project conversations run on the seed world, imported ones on the empty world."""
    make_arc_project(pytester)
    shutil.copy(SNAPSHOT_DATASET, pytester.path / "own.jsonl")
    result = pytester.runpytest_subprocess(
        *BASE, "--crm-backend", "memory", "--crm-dataset", "own.jsonl,arc.jsonl", timeout=300
    )
    result.assert_outcomes(passed=3 + len(CONVERSATION_IDS), skipped=7)
