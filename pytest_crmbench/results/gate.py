"""The CI gate: minimum pass rate, maximum error rate, regressions against a baseline."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_crmbench.results.packing import report_items
from pytest_crmbench.results.summary import ENVIRONMENT_FAMILIES, is_agent_item, summarize
from pytest_crmbench.runner.records import ItemResult


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


class BaselineError(ValueError):
    """The baseline is not a report or results stream of this benchmark."""


def _baseline_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The item results a baseline holds (a pytest-json-report file of a benchmark run,
    or a ``--crm-results`` stream); :class:`BaselineError` when it is neither."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{where}: cannot be read ({exc})") from None
    rows: list[dict[str, Any]] = []
    stripped = text.strip()
    if stripped.startswith("{") and "\n{" not in stripped:
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise BaselineError(f"{where}: not JSON ({exc.msg}, line {exc.lineno})") from None
        if not isinstance(data, dict) or "crmbench" not in data:
            raise BaselineError(f"{where}: not a report of a crmbench run (no 'crmbench' section)")
        rows += [dict(r) for r in report_items(data)]
    else:
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                if number == len(text.splitlines()):
                    continue  # a torn last line of a killed run
                raise BaselineError(f"{where}:{number}: not a JSON line") from None
            if isinstance(row, dict) and "crmbench_run" in row:
                continue  # the stream's header
            if not isinstance(row, dict) or "case_id" not in row or "outcome" not in row:
                raise BaselineError(f"{where}:{number}: not a crmbench result (no case_id/outcome)")
            rows.append(row)
    if not rows:
        raise BaselineError(f"{where}: holds no item results")
    return rows


def baseline_problems(path: str) -> list[str]:
    """Why ``path`` cannot serve as a baseline (empty when it can)."""
    try:
        _baseline_rows(path)
    except BaselineError as exc:
        return [
            f"--crm-baseline: {exc}; give the JSON report or the --crm-results file of "
            "an earlier run"
        ]
    return []


def baseline_outcomes(path: str | os.PathLike[str]) -> dict[str, bool]:
    """case_id → passed (all trials) from a previous JSON report or JSONL results file."""
    outcome: dict[str, bool] = {}
    for r in _baseline_rows(path):
        if r.get("family") not in ENVIRONMENT_FAMILIES and r.get("outcome") in ("passed", "failed"):
            outcome[r["case_id"]] = outcome.get(r["case_id"], True) and r["outcome"] == "passed"
    return outcome


def evaluate_gate(gate: Gate, results: Sequence[ItemResult]) -> GateVerdict:
    summary = summarize(results)
    verdict = GateVerdict(True)
    if summary["oracle"]:
        verdict.passed = False
        verdict.reasons.append(
            "oracle run: the agent was given or read reference data, so no gate passes it"
        )
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
            if is_agent_item(r) and r["outcome"] in ("passed", "failed"):
                now[r["case_id"]] = now.get(r["case_id"], True) and r["outcome"] == "passed"
        compared = sorted(set(now) & set(before))
        verdict.regressions = [c for c in compared if before[c] and not now[c]]
        allowed = gate.max_regressions or 0
        ok = len(verdict.regressions) <= allowed and bool(compared)
        verdict.passed &= ok
        if not compared:
            verdict.reasons.append("the baseline shares no judged case with this run")
        else:
            verdict.reasons.append(
                f"{len(verdict.regressions)} regression(s) vs baseline "
                f"{'≤' if ok else '>'} allowed {allowed} ({len(compared)} cases compared)"
            )
    return verdict
