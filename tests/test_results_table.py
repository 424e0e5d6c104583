"""The terminal summary renders every figure of the run summary."""

from __future__ import annotations

from pytest_crmbench.results.summary import summarize
from pytest_crmbench.results.table import render_summary


def _result(case: str, outcome: str, seconds: float, trial: int = 1) -> dict[str, object]:
    ok = outcome == "passed"
    turn = {
        "passed": ok,
        "checks": {"state": {"passed": ok}, "reply": {"passed": True}, "action": {"matched": ok}},
    }
    return {
        "case_id": case,
        "family": "conversation",
        "complexity": "simple",
        "workflow": "Quote Management",
        "tools": ["create_quote"],
        "trial": trial,
        "outcome": outcome,
        "passed": ok,
        "turns": [turn] if outcome != "error" else [],
        "first_failure": None if ok else {"turn": 1, "reason": "missing write: Quote"},
        "usage": {"input_tokens": 10, "output_tokens": 5, "cost_usd": 0.001},
        "duration_s": seconds,
    }


def test_summary_table_lists_rates_groups_slowest_reasons_and_pass_hat_k() -> None:
    results = [
        _result("CONV-0001", "passed", 0.004, 1),
        _result("CONV-0001", "passed", 0.005, 2),
        _result("CONV-0002", "failed", 2.5, 1),
        _result("CONV-0002", "passed", 0.002, 2),
        _result("CONV-0003", "error", 0.001),
    ]
    text = "\n".join(render_summary(summarize(results), agent="replay", store="memory"))
    assert "pass rate:  75.0%" in text
    assert "errors: 1" in text
    assert "pass^2:  50.0%" in text and "pass@1:  75.0%" in text
    assert "by complexity:" in text and "by workflow:" in text and "by tool" in text
    assert "slowest: CONV-0002 2.50 s, CONV-0001 5 ms" in text
    assert "missing write" in text
    assert "tokens: 50 in / 25 out" in text
