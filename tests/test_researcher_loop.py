"""The researcher's loop over finished runs: intervals, the packed report, shards and
``crmbench merge``, ``crmbench compare`` (McNemar), ``crmbench report`` (HTML)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from plugin_support.project import MEMORY, load_report, make_project

from pytest_crmbench.cli import main
from pytest_crmbench.results.compare import mcnemar_exact
from pytest_crmbench.results.packing import pack_report, report_items
from pytest_crmbench.results.summary import wilson
from pytest_crmbench.session import shard_of


def test_wilson_interval_known_values() -> None:
    assert wilson(0, 0) is None
    lo, hi = wilson(8, 10) or [0, 0]
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)
    assert wilson(10, 10) == [pytest.approx(0.722467, abs=1e-6), 1.0]
    assert wilson(0, 10)[0] == 0.0  # type: ignore[index]


def test_mcnemar_exact_p_values() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(0, 10) == pytest.approx(2 / 1024)
    assert mcnemar_exact(1, 9) == pytest.approx(2 * 11 / 1024)
    assert mcnemar_exact(0, 2000) == 0.0  # far below anything printed


def test_shards_are_balanced_by_work_and_deterministic() -> None:
    works = [(f"t{i}", w) for i, w in enumerate([9, 1, 1, 1, 1, 1, 1, 1, 1, 1, 8, 2])]
    owner = shard_of(works, 3)
    assert owner == shard_of(list(reversed(works)), 3)  # order-independent
    loads = [sum(w for n, w in works if owner[n] == k) for k in (1, 2, 3)]
    assert max(loads) - min(loads) <= 1
    assert sorted(owner.values()).count(1) != 4  # not balanced by count


def _run(pytester: pytest.Pytester, report: str, *args: str) -> dict[str, Any]:
    result = pytester.runpytest(*MEMORY, f"--crm-report={report}", *args)
    assert result.ret in (0, 1), result.stdout.str()[-2000:]
    return load_report(pytester.path / report)


def _comparable(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k != "slowest"}


def test_packed_report_round_trips_and_is_smaller(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    packed = _run(pytester, "r.json", "--agent", "noop")
    items = report_items(packed)
    assert packed["crmbench"]["packing"]["format"] == 1
    assert all("expected_calls" in t for r in items for t in r["turns"])
    plain = copy.deepcopy(packed)
    for test, item in zip(plain["tests"], items, strict=True):
        test["metadata"]["crmbench"] = item
    del plain["crmbench"]["packing"]
    again = copy.deepcopy(plain)
    pack_report(again)
    assert report_items(json.loads(json.dumps(again))) == items
    assert len(json.dumps(again)) < len(json.dumps(plain))
    summary = packed["crmbench"]["summary"]
    assert summary["pass_rate"] == 0.0 and summary["pass_rate_ci"][0] == 0.0
    assert set(summary["turn_pass_rate_by_kind_ci"]) == {"write", "read", "refusal"}
    assert all("pass_rate_ci" in g for g in summary["by_workflow"].values())
    assert "keywords" not in packed["tests"][0]  # the markers are in the item record


def test_merge_of_three_shards_equals_the_unsharded_run(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    make_project(pytester)
    whole = _run(pytester, "whole.json", "--agent", "crm_agents:KnowsTheAnswers")
    shards = []
    for k in (1, 2, 3):
        part = _run(pytester, f"s{k}.json", "--agent", "crm_agents:KnowsTheAnswers",
                    f"--crm-shard={k}/3")  # fmt: skip
        assert part["crmbench"]["shard"] == f"{k}/3"
        assert 0 < len(part["tests"]) < len(whole["tests"])
        shards.append(str(pytester.path / f"s{k}.json"))
    out = str(pytester.path / "merged.json")
    assert main(["merge", *shards, "-o", out]) == 0
    merged = load_report(out)
    assert _comparable(merged["crmbench"]["summary"]) == _comparable(whole["crmbench"]["summary"])
    key = lambda r: (r["case_id"], r["trial"], r["family"])  # noqa: E731
    strip = lambda r: {k: v for k, v in r.items() if "_s" not in k}  # noqa: E731
    assert sorted(map(key, report_items(merged))) == sorted(map(key, report_items(whole)))
    assert {key(r): r["outcome"] for r in report_items(merged)} == {
        key(r): r["outcome"] for r in report_items(whole)
    }
    assert len(strip(report_items(merged)[0])) > 5
    capsys.readouterr()
    # Missing, overlapping shards and another run's shard are refused, and say which.
    assert main(["merge", *shards[:2], "-o", out]) == 2
    assert "missing shard(s) 3/3" in capsys.readouterr().err
    assert main(["merge", shards[0], shards[0], shards[1], shards[2], "-o", out]) == 2
    assert "shard 1/3 given twice" in capsys.readouterr().err
    other = _run(pytester, "o3.json", "--agent", "noop", "--crm-shard=3/3")
    assert other["crmbench"]["shard"] == "3/3"
    assert main(["merge", *shards[:2], str(pytester.path / "o3.json"), "-o", out]) == 2
    err = capsys.readouterr().err
    assert "another run" in err and "noop" in err


def test_bad_shard_is_a_usage_error_before_anything_runs(pytester: pytest.Pytester) -> None:
    make_project(pytester, golden=False)
    for bad in ("0/3", "4/3", "x", "1-3", "2/"):
        result = pytester.runpytest(*MEMORY, f"--crm-shard={bad}")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        assert "--crm-shard" in result.stderr.str()


def test_compare_replay_vs_noop_and_replay_vs_replay(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    make_project(pytester)
    _run(pytester, "replay.json")
    _run(pytester, "replay2.json")
    _run(pytester, "noop.json", "--agent", "noop")
    a, b, n = (str(pytester.path / f) for f in ("replay.json", "replay2.json", "noop.json"))
    capsys.readouterr()
    assert main(["compare", a, n, "--json", "--fail-on-regression"]) == 1
    result = json.loads(capsys.readouterr().out)
    agent_cases = {
        r["case_id"] for r in report_items(load_report(a)) if r["family"] != "golden_sandbox"
    }
    assert set(result["regressions"]) == agent_cases and result["fixes"] == []
    assert result["p_value"] < 0.001
    assert result["verdict"].startswith("B is worse")
    html = pytester.path / "cmp.html"
    assert main(["compare", a, b, "-o", str(html)]) == 0
    out = capsys.readouterr().out
    assert "no detectable difference" in out
    assert "no detectable difference" in html.read_text(encoding="utf-8")
    assert main(["compare", a, b, "--json", "--fail-on-regression"]) == 0
    same = json.loads(capsys.readouterr().out)
    assert same["regressions"] == [] and same["p_value"] == 1.0
    # Different datasets are refused unless allowed.
    other = load_report(b)
    other["crmbench"]["dataset"]["sha256"] = "0" * 64
    Path(b).write_text(json.dumps(other), encoding="utf-8")
    assert main(["compare", a, b]) == 2
    assert "different datasets" in capsys.readouterr().err
    assert main(["compare", a, b, "--allow-different-datasets", "--json"]) == 0


def test_report_writes_one_self_contained_page(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    make_project(pytester)
    _run(pytester, "noop.json", "--agent", "noop")
    out = pytester.path / "r.html"
    assert main(["report", str(pytester.path / "noop.json"), "-o", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    needles = ("pass rate by complexity", "pass rate by workflow", "turn pass rate by kind")
    needles += ("failure taxonomy", "pass rate by tool", "environment checks", "<svg")
    for needle in needles:
        assert needle in html
    # Nothing is fetched from anywhere: no external URL in src/href, no fetch API.
    assert 'src="http' not in html and 'href="http' not in html
    assert "fetch(" not in html and "XMLHttpRequest" not in html
    assert main(["report", str(pytester.path / "missing.json"), "-o", str(out)]) == 2
    assert "no such file" in capsys.readouterr().err
