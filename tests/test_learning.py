"""Continual learning end to end, without an API key: the real Anthropic SDK (``--agent
playbook:claude``) against the fake model server's *learner* policy, which makes
systematic mistakes until its system prompt holds the matching lesson.

* student feedback: the learning curve rises (last window ≥ 30 points above the first),
  and the frozen playbook beats the same agent without learning on the held-out split;
* no feedback: the curve stays flat; teacher feedback: it rises faster;
* ordered streams: -n with --dist load is a usage error, --dist loadgroup gives one
  stream per worker; the statistics (Wilson, Newcombe) and the held-out split's
  disjointness are checked directly.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from plugin_support.project import MEMORY, REPO, load_report

from pytest_crmbench.agents.playbook import Playbook
from pytest_crmbench.cli import main
from pytest_crmbench.dataset import load_dataset
from pytest_crmbench.fakemodel import FakeModelServer, LearnerPolicy, RouterPolicy, learnt_lessons
from pytest_crmbench.generate.holdout import created_names, utterances
from pytest_crmbench.results.learning import curve, newcombe, wilson

LEARN = 40  # conversations learnt on (shipped dataset order)
HELD = 30  # held-out conversations evaluated
WINDOW = "--crm-window=10"
HOLDOUT = REPO / "cases" / "conversations_holdout.jsonl"


def _lines(path: Path, n: int) -> list[str]:
    return [x for x in path.read_text(encoding="utf-8").splitlines() if x.strip()][:n]


@pytest.fixture
def learner_server(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeModelServer]:
    cases = pytester.path / "cases"
    cases.mkdir()
    shutil.copy(REPO / "cases" / "test_conversations.py", cases / "test_conversations.py")
    learn = _lines(REPO / "cases" / "conversations.jsonl", LEARN)
    (cases / "conversations.jsonl").write_text("\n".join(learn) + "\n", encoding="utf-8")
    held = _lines(HOLDOUT, HELD)
    (pytester.path / "heldout.jsonl").write_text("\n".join(held) + "\n", encoding="utf-8")
    (pytester.path / "conftest.py").write_text('"""Project root."""\n', encoding="utf-8")
    convs = load_dataset([cases / "conversations.jsonl", pytester.path / "heldout.jsonl"])
    for var in ("ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_LOG"):
        monkeypatch.delenv(var, raising=False)
    with FakeModelServer(RouterPolicy(LearnerPolicy(convs.conversations)), latency=0.0) as srv:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "fake-key-for-the-fake-server")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.anthropic_base_url)
        yield srv


def _run(pytester: pytest.Pytester, name: str, *args: str) -> dict[str, Any]:
    result = pytester.runpytest_subprocess(
        *MEMORY, "-p", "no:randomly", "--json-report", f"--json-report-file={name}.json", *args
    )
    assert result.ret in (0, 1), result.stdout.str()[-3000:]
    report = load_report(pytester.path / f"{name}.json")
    report["_stdout"] = result.stdout.str()
    return report


def _curve(report: dict[str, Any]) -> dict[str, Any]:
    lc: dict[str, Any] = report["crmbench"]["summary"]["learning_curve"]
    return lc


def test_student_feedback_learns_and_transfers_to_the_held_out_split(
    pytester: pytest.Pytester, learner_server: FakeModelServer
) -> None:
    learning = _run(
        pytester,
        "learn",
        "--agent=playbook:claude",
        "--crm-feedback=student",
        WINDOW,
        "--agent-memory=memory.json",
    )
    lc = _curve(learning)
    assert lc["window"] == 10 and lc["streams"] == 1 and lc["items"] == LEARN
    assert lc["last"]["pass_rate"] - lc["first"]["pass_rate"] >= 0.30, lc
    assert lc["delta_ci"][0] > 0  # the rise is beyond chance
    assert [w["start"] for w in lc["windows"]] == [1, 11, 21, 31]
    assert lc["by_workflow"]  # per workflow too
    assert "learning curve (window 10" in learning["_stdout"]
    info = learning["crmbench"]["learning"]
    assert info["order"] == "dataset" and info["streams"] == 1 and info["feedback"] == "student"
    summary = learning["crmbench"]["summary"]
    assert summary["learning_input_tokens"] == 0  # deterministic distilling costs nothing
    memory = json.loads((pytester.path / "memory.json").read_text(encoding="utf-8"))
    assert set(memory["lessons"]) >= {"enum-case", "required-field", "lookup-first"}
    # Held-out: the frozen playbook vs the same model without learning.
    held = ["--crm-dataset=heldout.jsonl"]
    frozen = _run(
        pytester,
        "frozen",
        *held,
        "--agent=playbook:claude",
        "--agent-frozen",
        "--agent-memory=memory.json",
    )
    baseline = _run(pytester, "baseline", *held, "--agent=claude")
    learnt_rate = frozen["crmbench"]["summary"]["pass_rate"]
    base_rate = baseline["crmbench"]["summary"]["pass_rate"]
    assert learnt_rate >= base_rate + 0.3, (learnt_rate, base_rate)
    # Frozen: the memory did not change.
    after = json.loads((pytester.path / "memory.json").read_text(encoding="utf-8"))
    assert after == memory


def test_without_feedback_the_curve_stays_flat_and_teacher_learns_faster(
    pytester: pytest.Pytester, learner_server: FakeModelServer
) -> None:
    flat = _curve(_run(pytester, "off", "--agent=playbook:claude", WINDOW))
    rates = [w["pass_rate"] for w in flat["windows"]]
    assert max(rates) - min(rates) <= 0.2 and flat["delta_ci"][0] < 0 < flat["delta_ci"][1]
    student = _curve(
        _run(pytester, "student", "--agent=playbook:claude", "--crm-feedback=student", WINDOW)
    )
    teacher = _curve(
        _run(pytester, "teacher", "--agent=playbook:claude", "--crm-feedback=teacher", WINDOW)
    )
    assert teacher["first"]["pass_rate"] > student["first"]["pass_rate"]
    assert sum(w["pass_rate"] for w in teacher["windows"]) > sum(
        w["pass_rate"] for w in student["windows"]
    )


def test_feedback_with_xdist_needs_loadgroup_and_runs_one_stream_per_worker(
    pytester: pytest.Pytester, learner_server: FakeModelServer
) -> None:
    args = (*MEMORY, "-p", "no:randomly", "--agent=playbook:claude", "--crm-feedback=student")
    bad = pytester.runpytest_subprocess(*args, "-n", "2")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    assert "--dist loadgroup" in bad.stderr.str()
    report = _run(
        pytester,
        "xdist",
        "--agent=playbook:claude",
        "--crm-feedback=student",
        "-n",
        "2",
        "--dist",
        "loadgroup",
        "--crm-stream-seed=7",
        WINDOW,
    )
    lc = _curve(report)
    assert lc["streams"] == 2 and lc["items"] == LEARN
    assert report["crmbench"]["learning"]["order"] == "seed 7"
    metas = [t["metadata"]["crmbench"] for t in report["tests"]]
    for stream in {m["stream"] for m in metas}:
        seqs = sorted(m["seq"] for m in metas if m["stream"] == stream)
        assert seqs == list(range(1, len(seqs) + 1))


# == pieces ===========================================================================
def test_wilson_and_newcombe_intervals() -> None:
    lo, hi = wilson(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == pytest.approx(1.0)
    # Newcombe (1998), method 10, his example: 56/70 vs 48/80 → d = 0.2, CI 0.0524..0.3339
    lo, hi = newcombe((48, 80), (56, 70))
    assert lo == pytest.approx(0.0524, abs=1e-3) and hi == pytest.approx(0.3339, abs=1e-3)


def test_a_short_last_window_is_merged() -> None:
    rows: list[Any] = [{"outcome": "passed" if i > 4 else "failed"} for i in range(23)]
    lc = curve(rows, 10)
    assert lc is not None
    assert [(w["start"], w["end"]) for w in lc["windows"]] == [(1, 10), (11, 23)]
    assert lc["delta"] == pytest.approx(1.0 - 0.5)


def test_playbook_needs_more_student_evidence_than_teacher() -> None:
    fb = {
        "mode": "student",
        "turns": [{"passed": False, "reasons": ["tool error: x: stage must be one of: A"]}],
    }
    student = Playbook()
    for _ in range(2):
        student.learn(fb)
    assert not student.lessons
    student.learn(fb)
    assert list(student.lessons) == ["enum-case"]
    teacher = Playbook()
    teacher.learn({**fb, "mode": "teacher"})
    assert list(teacher.lessons) == ["enum-case"]
    assert set(learnt_lessons("base prompt" + teacher.render())) == {"enum-case"}
    assert learnt_lessons("spelled exactly, case-sensitive enum values") == set()


def test_holdout_is_regenerated_byte_for_byte(tmp_path: Path) -> None:
    """The shipped held-out file is what ``crmbench generate --holdout`` writes."""
    shutil.copy(REPO / "cases" / "conversations.jsonl", tmp_path / "conversations.jsonl")
    assert main(["generate", "--holdout", f"--output={tmp_path}"]) == 0
    assert (tmp_path / "conversations_holdout.jsonl").read_bytes() == HOLDOUT.read_bytes()


def test_holdout_is_disjoint_from_the_main_dataset() -> None:
    main = load_dataset(REPO / "cases" / "conversations.jsonl").conversations
    held = load_dataset(HOLDOUT).conversations
    assert len(held) == 300
    assert not utterances(main) & utterances(held)
    assert not created_names(main) & created_names(held)
    assert created_names(held)  # it does create records
    assert not {c.id for c in main} & {c.id for c in held}
