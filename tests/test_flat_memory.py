"""What keeps a long run's memory flat: slim result copies, the report assembled from
disk, conversations kept as lines, a bounded reference cache (no timings: see
benchmarks/bench_memory.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import packing_reference
import pytest
from plugin_support.project import MEMORY, SNAPSHOT_DATASET, load_report, make_project

from pytest_crmbench.agents.loading import make_agent
from pytest_crmbench.backends import open_memory_store
from pytest_crmbench.crm.seed import load_seed_world
from pytest_crmbench.dataset.loader import load_dataset
from pytest_crmbench.items import Case, case_markers, conversation_cases
from pytest_crmbench.results.gate import Gate, evaluate_gate
from pytest_crmbench.results.packing import pack_report, report_items, write_packed_report
from pytest_crmbench.results.stream import ResultsStream
from pytest_crmbench.results.summary import slim_result, summarize
from pytest_crmbench.runner import Runner
from pytest_crmbench.runner.records import ItemResult, error_result
from pytest_crmbench.runner.runner import REF_CACHE_SIZE


@pytest.fixture(scope="module")
def results() -> list[ItemResult]:
    """Real results: replay (passes), noop (fails), an error and a skip; plain JSON."""
    world = load_seed_world()
    runner = Runner(open_memory_store(world), world)
    convs = load_dataset([SNAPSHOT_DATASET]).conversations
    out: list[ItemResult] = []
    for name in ("replay", "noop"):
        agent = make_agent(name)
        for conv in convs:
            result = runner.run(conv, agent)
            result["family"] = "conversation"
            out.append(result)
    out.append(error_result("CONV-X", "database gone", test_id="x", family="conversation"))
    out.append(
        error_result("CONV-Y", "defect", test_id="y", family="conversation", outcome="skipped")
    )
    assert len(runner._ref_cache) <= REF_CACHE_SIZE < len(convs)
    return [json.loads(json.dumps(r, default=str)) for r in out]


def test_slim_results_summarize_and_gate_like_the_full_ones(results: list[ItemResult]) -> None:
    slim = [slim_result(r) for r in results]
    assert any(not r["passed"] for r in results) and any(r["passed"] for r in results)
    assert summarize(slim) == summarize(results)
    assert summarize(slim, window=3) == summarize(results, window=3)
    gate = Gate(0.9, None, None, 0.01)
    assert evaluate_gate(gate, slim).as_dict() == evaluate_gate(gate, results).as_dict()
    assert [slim_result(r) for r in slim] == slim
    assert len(json.dumps(slim)) * 3 < len(json.dumps(results))


def _report(records: list[ItemResult]) -> dict[str, Any]:
    tests = [
        {"nodeid": f"t.py::test[{i}]", "outcome": "passed", "metadata": {"crmbench": r}}
        for i, r in enumerate(records)
    ]
    tests.append({"nodeid": "t.py::plain", "outcome": "passed"})
    return {"created": 1.0, "tests": tests, "crmbench": {"run_id": "r", "summary": {}}}


def test_report_written_from_disk_is_the_packed_report_byte_for_byte(
    results: list[ItemResult], tmp_path: Path
) -> None:
    stream = ResultsStream(tmp_path / "spool.jsonl", durable=False)
    offsets = {f"t.py::test[{i}]": stream.write(r) for i, r in enumerate(results)}
    slim = _report([slim_result(r) for r in results])
    write_packed_report(
        tmp_path / "streamed.json", slim, lambda t: stream.read_at(offsets[t["nodeid"]])
    )
    stream.close()
    whole = _report(results)
    pack_report(whole)
    expected = json.dumps(whole, separators=(",", ":"), ensure_ascii=False, default=str)
    assert (tmp_path / "streamed.json").read_text(encoding="utf-8") == expected
    assert report_items(json.loads(expected)) == results


# Values that look like the packing's own encoding, numbers json writes its own way, keys
# json converts, escapes, repeats below and above the sharing threshold.
ODD_TURN: dict[str, Any] = {
    "turn": 1,
    "row": "\u0000",
    "rows": ["\u0000", 1, {"a": 1, "b": 2, "c": 3}],
    "ref": {"$": 1},
    "escape": {"$$": ["\u0000"], "x": [1.5, -0.0, 1e300, 2.5e-7, float("nan"), float("inf")]},
    "keys": {1: "one", None: [True, False]},
    "text": 'é\n\t"\\\u2028 ' * 3,
    "same": ["a repeated value long enough"] * 3,
    "short": ["tiny"] * 3,
    "calls": [{"tool": "t", "args": {"q": "{{turn1.id}}"}, "ok": True}],
    "expected_calls": [{"tool": "t", "args": {"q": "{{turn1.id}}"}}],
    "reasons": [],
}


def test_packing_is_byte_for_byte_the_reference_packing(
    results: list[ItemResult], tmp_path: Path
) -> None:
    """The packer builds each value's text once from its parts'; the report is still
    exactly what the first packer (a ``json.dumps`` per value, kept in
    ``tests/packing_reference.py``) wrote."""
    odd = {"case_id": "ODD", "turns": [ODD_TURN, ODD_TURN], "result": {"$": [ODD_TURN]}}
    records = [*results, odd, *results[:3]]

    def dump(report: dict[str, Any]) -> str:
        return json.dumps(report, separators=(",", ":"), ensure_ascii=False, default=str)

    expected = _report(records)
    packing_reference.pack_report(expected)
    packed = _report(records)
    pack_report(packed)
    assert dump(packed) == dump(expected)
    expected = _report(records)
    packing_reference.pack_report(expected)
    write_packed_report(tmp_path / "r.json", _report(records), lambda t: t["metadata"]["crmbench"])
    assert (tmp_path / "r.json").read_text(encoding="utf-8") == dump(expected)


def test_conversations_are_kept_as_lines_and_rebuilt_equal() -> None:
    cases, dataset = conversation_cases((str(SNAPSHOT_DATASET),), 2)
    convs = load_dataset([SNAPSHOT_DATASET]).conversations
    assert dataset.conversations == () and len(cases) == 2 * len(convs)
    for case, conv in zip(cases[::2], convs, strict=True):
        assert case.compact is not None and case.dialogue is None
        assert case.conversation == conv
        assert case.markers() == case_markers("conversation", conv, None)
        assert case.tools() == sorted({c.tool for t in conv.turns for c in t.expected_calls})
        assert case.work() == sum(1 + len(t.expected_calls) for t in conv.turns)
        assert (case.workflow(), case.complexity()) == (conv.workflow, conv.complexity)
    plain = Case("conversation", convs[0].id, "t", dialogue=convs[0])
    assert plain.markers() == cases[0].markers() and plain.work() == cases[0].work()


def test_a_run_keeps_slim_copies_and_reports_full_records(pytester: pytest.Pytester) -> None:
    """In-process: what pytest keeps (reports, items) holds the slim copy; the JSON report
    and the results stream hold the full records."""
    make_project(pytester, golden=False)
    kept: list[Any] = []

    class Spy:
        @pytest.hookimpl(trylast=True)
        def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
            kept.extend(v for k, v in report.user_properties if k == "crmbench")

    result = pytester.runpytest(
        "cases", "--agent", "replay", *MEMORY, "--crm-results=r.jsonl", plugins=[Spy()]
    )
    result.assert_outcomes(passed=12)
    items = report_items(load_report(pytester.path / ".crmbench" / "report.json"))
    assert len(kept) == len(items) == 12
    streamed = [json.loads(x) for x in (pytester.path / "r.jsonl").read_text().splitlines()][1:]
    assert items == streamed
    assert all(k == slim_result(full) for k, full in zip(kept, items, strict=True))
    assert all("calls" not in t for k in kept for t in k["turns"])
    assert all(t["calls"] for r in items for t in r["turns"])
