"""Run summaries, the CI gate and the JSONL results stream — plain data, no pytest.

An item result is the plain-JSON dict the runner returns (``outcome`` is ``passed``,
``failed``, ``error`` or ``skipped``). Conversations and golden cases are counted alike.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 6) if den else None


def _group(results: Sequence[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        values = r.get(key)
        for value in values if isinstance(values, list) else [values]:
            if value is not None:
                groups[str(value)].append(r)
    return {name: _counts(rows) for name, rows in sorted(groups.items())}


def _counts(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    passed = sum(r["outcome"] == "passed" for r in rows)
    failed = sum(r["outcome"] == "failed" for r in rows)
    errors = sum(r["outcome"] == "error" for r in rows)
    return {
        "items": len(rows),
        "passed": passed,
        "failed": failed,
        "errors": errors,
        "pass_rate": _rate(passed, passed + failed),
    }


def pass_hat_k(results: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """pass^k: share of cases that passed every one of their k trials (errors excluded)."""
    trials: dict[str, list[bool]] = defaultdict(list)
    for r in results:
        if r["outcome"] in ("passed", "failed"):
            trials[r["case_id"]].append(r["outcome"] == "passed")
    if not trials:
        return None
    k = max(len(v) for v in trials.values())
    if k < 2:
        return None
    complete = {c: v for c, v in trials.items() if len(v) == k}
    return {
        "k": k,
        "cases": len(complete),
        "pass_hat_k": _rate(sum(all(v) for v in complete.values()), len(complete)),
        "pass_at_1": _rate(sum(sum(v) for v in complete.values()), k * len(complete)),
    }


def summarize(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The ``crmbench.summary`` of a run."""
    judged = [r for r in results if r["outcome"] in ("passed", "failed")]
    counts = _counts(results)
    turns = [t for r in judged for t in r.get("turns") or []]
    actions = [t["checks"]["action"]["matched"] for t in turns if "action" in t.get("checks", {})]
    by_tool: dict[str, dict[str, Any]] = _group(judged, "tools")
    usage: dict[str, float] = defaultdict(float)
    for r in results:
        for k, v in (r.get("usage") or {}).items():
            if isinstance(v, int | float):
                usage[k] += v
    reasons = Counter(
        _reason_kind(r["first_failure"]["reason"]) for r in judged if r.get("first_failure")
    )
    conv = [r for r in judged if r.get("family") == "conversation"]
    summary: dict[str, Any] = {
        **counts,
        "skipped": sum(r["outcome"] == "skipped" for r in results),
        "error_rate": _rate(counts["errors"], counts["items"]),
        "turns": len(turns),
        "turn_pass_rate": _rate(sum(t["passed"] for t in turns), len(turns)),
        "action_match_rate": _rate(sum(actions), len(actions)),
        "by_complexity": _group(judged, "complexity"),
        "by_workflow": _group(judged, "workflow"),
        "by_family": _group(results, "family"),
        "by_tool": by_tool,
        "input_tokens": int(usage.get("input_tokens", 0)),
        "output_tokens": int(usage.get("output_tokens", 0)),
        "cache_read_tokens": int(usage.get("cache_read_tokens", 0)),
        "cache_write_tokens": int(usage.get("cache_write_tokens", 0)),
        "cost_usd": round(float(usage.get("cost_usd", 0.0)), 6),
        "top_failure_reasons": [{"reason": k, "count": n} for k, n in reasons.most_common(10)],
        "slowest": [
            {"case_id": r["case_id"], "duration_s": r.get("duration_s")}
            for r in sorted(results, key=lambda r: -(r.get("duration_s") or 0))[:5]
        ],
        # Comparable with the upstream's published figures.
        "share_any_turn_state_passed": _rate(
            sum(any(t["checks"]["state"]["passed"] for t in r["turns"]) for r in conv), len(conv)
        ),
        "share_any_turn_reply_passed": _rate(
            sum(any(t["checks"]["reply"]["passed"] for t in r["turns"]) for r in conv), len(conv)
        ),
    }
    # The judge's own tokens and cost, counted apart from the agent's.
    for key in sorted(k for k in usage if k.startswith("judge_")):
        summary[key] = round(usage[key], 6) if "cost" in key else int(usage[key])
    hat = pass_hat_k(results)
    if hat is not None:
        summary["pass_hat_k"] = hat
    return summary


def _reason_kind(reason: str) -> str:
    """Collapse a failure reason to its kind, for the failure taxonomy."""
    for prefix in (
        "missing write",
        "unexpected write",
        "missing fact",
        "reply does not tell",
        "turn limit",
        "expected calls not made",
        "tool error",
    ):
        if reason.startswith(prefix):
            return prefix
    if "modified wrongly" in reason or "differs" in reason:
        return "wrong values"
    if "expected" in reason:
        return "wrong operation"
    return reason[:60]


# == CI gate ========================================================================
@dataclass
class Gate:
    min_pass_rate: float | None = None
    baseline: str | None = None
    max_regressions: int | None = None
    max_error_rate: float | None = None

    @property
    def active(self) -> bool:
        # max_regressions alone checks nothing (it may be pinned in ini, the baseline
        # given only in CI): it must not turn pytest's exit status into a vacuous pass.
        return any(x is not None for x in (self.min_pass_rate, self.baseline, self.max_error_rate))


@dataclass
class GateVerdict:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    regressions: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "reasons": self.reasons, "regressions": self.regressions}


def baseline_outcomes(path: str | os.PathLike[str]) -> dict[str, bool]:
    """case_id → passed (all trials) from a previous JSON report or JSONL results file."""
    text = Path(path).read_text(encoding="utf-8")
    rows: list[dict[str, Any]] = []
    if text.lstrip().startswith("{") and "\n{" not in text.strip():
        data = json.loads(text)
        for test in data.get("tests", []):
            meta = test.get("metadata", {}).get("crmbench")
            if meta:
                rows.append(meta)
        rows.extend(data.get("crmbench", {}).get("results", []))
    else:
        rows = list(read_jsonl(path))
    outcome: dict[str, bool] = {}
    for r in rows:
        if r.get("outcome") in ("passed", "failed"):
            outcome[r["case_id"]] = outcome.get(r["case_id"], True) and r["outcome"] == "passed"
    return outcome


def evaluate_gate(gate: Gate, results: Sequence[dict[str, Any]]) -> GateVerdict:
    summary = summarize(results)
    verdict = GateVerdict(True)
    rate = summary["pass_rate"]
    if gate.min_pass_rate is not None:
        if rate is None or rate < gate.min_pass_rate:
            verdict.passed = False
            shown = "n/a" if rate is None else f"{rate:.3f}"
            verdict.reasons.append(f"pass rate {shown} < minimum {gate.min_pass_rate:.3f}")
        else:
            verdict.reasons.append(f"pass rate {rate:.3f} ≥ minimum {gate.min_pass_rate:.3f}")
    if gate.max_error_rate is not None:
        err = summary["error_rate"] or 0.0
        ok = err <= gate.max_error_rate
        verdict.passed &= ok
        verdict.reasons.append(
            f"error rate {err:.3f} {'≤' if ok else '>'} maximum {gate.max_error_rate:.3f}"
        )
    if gate.baseline is not None:
        before = baseline_outcomes(gate.baseline)
        now: dict[str, bool] = {}
        for r in results:
            if r["outcome"] in ("passed", "failed"):
                now[r["case_id"]] = now.get(r["case_id"], True) and r["outcome"] == "passed"
        verdict.regressions = sorted(c for c, ok in now.items() if before.get(c) and not ok)
        allowed = gate.max_regressions or 0
        ok = len(verdict.regressions) <= allowed
        verdict.passed &= ok
        verdict.reasons.append(
            f"{len(verdict.regressions)} regression(s) vs baseline "
            f"{'≤' if ok else '>'} allowed {allowed}"
        )
    return verdict


# == JSONL stream ===================================================================
class ResultsStream:
    """Appends one JSON line per finished item, flushed and fsynced: a crash loses nothing done."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair()
        self._fh = self.path.open("a", encoding="utf-8")

    def _repair(self) -> None:
        """Drop a torn last line left by a killed run."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with self.path.open("r+b") as fh:
                fh.truncate(cut)

    def write(self, result: dict[str, Any]) -> None:
        self._fh.write(json.dumps(result, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


def read_jsonl(path: str | os.PathLike[str]) -> Iterable[dict[str, Any]]:
    """Every complete line of a results stream (a torn last line is ignored)."""
    p = Path(path)
    if not p.exists():
        return []
    rows = []
    for line in p.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows
