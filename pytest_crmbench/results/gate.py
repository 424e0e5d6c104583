"""The CI gate: minimum pass rate, maximum error rate, regressions against a baseline."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_crmbench.results.stream import read_jsonl
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
        verdict.regressions = sorted(c for c, ok in now.items() if before.get(c) and not ok)
        allowed = gate.max_regressions or 0
        ok = len(verdict.regressions) <= allowed
        verdict.passed &= ok
        verdict.reasons.append(
            f"{len(verdict.regressions)} regression(s) vs baseline "
            f"{'≤' if ok else '>'} allowed {allowed}"
        )
    return verdict
