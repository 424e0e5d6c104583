"""The ``crmbench.summary`` of a run: counts, rates, breakdowns, usage, pass^k.

Every rate has its 95 % Wilson score interval next to it (``<rate>_ci``: [low, high]).

Built from item results alone (plain data), so the plugin, a resumed run and later
tools (compare, HTML report) all compute the same figures.
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from pytest_crmbench.results.learning import learning_curve
from pytest_crmbench.runner.records import ItemResult


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 6) if den else None


Z95 = 1.959963984540054  # the normal quantile of a two-sided 95 % interval


def wilson(num: int, den: int, z: float = Z95) -> list[float] | None:
    """The Wilson score interval of ``num / den`` (95 % by default): unlike the normal
    approximation it stays inside [0, 1] and is honest at 0 %, 100 % and small counts."""
    if not den:
        return None
    p = num / den
    centre = (p + z * z / (2 * den)) / (1 + z * z / den)
    half = z * ((p * (1 - p) / den + z * z / (4 * den * den)) ** 0.5) / (1 + z * z / den)
    return [round(max(0.0, centre - half), 6), round(min(1.0, centre + half), 6)]


def _group(results: Sequence[ItemResult], key: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[ItemResult]] = defaultdict(list)
    for r in results:
        values = r.get(key)
        for value in values if isinstance(values, list) else [values]:
            if value is not None:
                groups[str(value)].append(r)
    return {name: _counts(rows) for name, rows in sorted(groups.items())}


def _counts(rows: Sequence[ItemResult]) -> dict[str, Any]:
    passed = sum(r["outcome"] == "passed" for r in rows)
    failed = sum(r["outcome"] == "failed" for r in rows)
    errors = sum(r["outcome"] == "error" for r in rows)
    return {
        "items": len(rows),
        "passed": passed,
        "failed": failed,
        "errors": errors,
        "pass_rate": _rate(passed, passed + failed),
        "pass_rate_ci": wilson(passed, passed + failed),
    }


def pass_hat_k(results: Sequence[ItemResult]) -> dict[str, Any] | None:
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
    every = sum(all(v) for v in complete.values())
    ones = sum(sum(v) for v in complete.values())
    return {
        "k": k,
        "cases": len(complete),
        "pass_hat_k": _rate(every, len(complete)),
        "pass_hat_k_ci": wilson(every, len(complete)),
        "pass_at_1": _rate(ones, k * len(complete)),
        "pass_at_1_ci": wilson(ones, k * len(complete)),
    }


ENVIRONMENT_FAMILIES = frozenset({"golden_sandbox"})  # items that run without the agent
TURN_KINDS = ("write", "read", "refusal")


def is_agent_item(result: ItemResult) -> bool:
    """Whether the agent acted in this item (only those are scored)."""
    return result.get("family") not in ENVIRONMENT_FAMILIES


def summarize(all_results: Sequence[ItemResult], *, window: int = 50) -> dict[str, Any]:
    """The ``crmbench.summary`` of a run.

    Every rate, table, pass^k and gate counts only items in which the agent acted;
    environment checks (golden sandbox cases, sent to the CRM without the agent) are
    counted apart under ``environment``. Items of an ordered run (with ``seq``) add the
    ``learning_curve`` over windows of ``window`` conversations.
    """
    results = [r for r in all_results if is_agent_item(r)]
    environment = [r for r in all_results if not is_agent_item(r)]
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
    firsts = [r.get("first_failure") for r in judged]
    reasons = Counter(_reason_kind(f["reason"]) for f in firsts if f and f["reason"])
    conv = [r for r in judged if r.get("family") == "conversation"]
    by_kind = {
        kind: (
            sum(t["passed"] for t in turns if t.get("kind") == kind),
            sum(t.get("kind") == kind for t in turns),
        )
        for kind in TURN_KINDS
    }
    summary: dict[str, Any] = {
        **counts,
        "skipped": sum(r["outcome"] == "skipped" for r in results),
        "error_rate": _rate(counts["errors"], counts["items"]),
        "turns": len(turns),
        "turn_pass_rate": _rate(sum(t["passed"] for t in turns), len(turns)),
        "turn_pass_rate_ci": wilson(sum(t["passed"] for t in turns), len(turns)),
        "turn_pass_rate_by_kind": {kind: _rate(*by_kind[kind]) for kind in TURN_KINDS},
        "turn_pass_rate_by_kind_ci": {kind: wilson(*by_kind[kind]) for kind in TURN_KINDS},
        "turns_by_kind": {kind: sum(t.get("kind") == kind for t in turns) for kind in TURN_KINDS},
        "action_match_rate": _rate(sum(actions), len(actions)),
        "action_match_rate_ci": wilson(sum(actions), len(actions)),
        "by_complexity": _group(judged, "complexity"),
        "by_workflow": _group(judged, "workflow"),
        "by_family": _group(results, "family"),
        "by_tool": by_tool,
        "input_tokens": int(usage.get("input_tokens", 0)),
        "output_tokens": int(usage.get("output_tokens", 0)),
        "cache_read_tokens": int(usage.get("cache_read_tokens", 0)),
        "cache_write_tokens": int(usage.get("cache_write_tokens", 0)),
        "cost_usd": round(float(usage.get("cost_usd", 0.0)), 6),
        "model_calls": int(usage.get("model_calls", 0)),
        "retries": int(usage.get("retries", 0)),
        # --agent-cache: replies replayed (no model call, no cost), asked of the model,
        # and what the replayed ones cost when they were recorded.
        "cache_hits": int(usage.get("cache_hits", 0)),
        "cache_misses": int(usage.get("cache_misses", 0)),
        "cache_saved_usd": round(float(usage.get("cache_saved_usd", 0.0)), 6),
        "environment": {
            **_counts(environment),
            "skipped": sum(r["outcome"] == "skipped" for r in environment),
        },
        "oracle": any(r.get("oracle") for r in all_results),
        # Ties by name: the same whatever order the items finished in (xdist, shards).
        "top_failure_reasons": [
            {"reason": k, "count": n}
            for k, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        ],
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
    # The judge's and the learner's own tokens and cost, counted apart from the agent's.
    for key in sorted(k for k in usage if k.startswith(("judge_", "learning_"))):
        summary[key] = round(usage[key], 6) if key.endswith("_usd") else int(usage[key])
    curve = learning_curve(results, window)
    if curve is not None:
        summary["learning_curve"] = curve
    hat = pass_hat_k(results)
    if hat is not None:
        summary["pass_hat_k"] = hat
    return summary


SLIM_DROP = frozenset({"turns", "result", "problems"})  # the bulk of a record
SLIM_TURN = ("turn", "kind", "passed")
SLIM_CHECK = ("passed", "matched")
SLIM_INTERN = 40  # strings up to this length are interned


def slim_result(result: ItemResult) -> ItemResult:
    """What the summary, the gate and the run's bookkeeping read of a result, and no more:
    the record without its calls, replies and sandbox payloads, its lists and dicts shared
    with equal ones of earlier records (turn verdicts, tools and usage repeat), so a long
    run keeps about a kilobyte per item in memory. Treat it as read-only.
    ``summarize(map(slim_result, rs)) == summarize(rs)``; slimming twice changes nothing.
    """
    out: dict[str, Any] = {}
    for key, value in result.items():
        if key == "turns":
            turns: list[dict[str, Any]] = value or []  # type: ignore[assignment]
            value = [  # a turn's verdict flags repeat across items: each shared too
                _shared(
                    {
                        **{k: t[k] for k in SLIM_TURN if k in t},
                        "checks": {
                            name: {k: check[k] for k in SLIM_CHECK if k in check}
                            for name, check in (t.get("checks") or {}).items()
                            if isinstance(check, dict)
                        },
                    }
                )
                for t in turns
            ]
        elif key in SLIM_DROP:
            continue
        if isinstance(value, list | dict):
            value = _shared(value)
        elif isinstance(value, str) and len(value) <= SLIM_INTERN:
            value = sys.intern(value)  # outcome, family, workflow… repeat on every item
        out[sys.intern(key)] = value
    if "turns" not in out:
        out["turns"] = _shared([])
    return out  # type: ignore[return-value]


_SHARED: dict[str, Any] = {}
_SHARED_MAX = 200_000  # distinct values kept for sharing (beyond it, values are not shared)


def _shared(value: Any) -> Any:
    """The first value equal to ``value`` that was seen (by its JSON text), or ``value``."""
    try:
        key = json.dumps(value, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return value
    found = _SHARED.get(key)
    if found is not None:
        return found
    if len(_SHARED) < _SHARED_MAX:
        _SHARED[key] = value
    return value


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
