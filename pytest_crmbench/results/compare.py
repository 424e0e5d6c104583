"""``crmbench compare A B``: did B get better or worse than A, and is it more than chance?

Cases are paired: a case counts as passed when all its trials passed (pass^k; with one
trial, passed). Only cases both runs judged are compared, with the exact McNemar test
(two-sided binomial test on the discordant pairs): ``p`` is the chance of a split at
least this lopsided between fixes and regressions if A and B were equally good.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from math import comb
from typing import Any

from pytest_crmbench.results.packing import report_items
from pytest_crmbench.results.summary import is_agent_item, summarize, wilson
from pytest_crmbench.runner.records import ItemResult

ALPHA = 0.05


class CompareError(ValueError):
    """The two runs cannot be compared (different datasets, nothing shared)."""


def mcnemar_exact(fixes: int, regressions: int) -> float:
    """Two-sided exact McNemar p-value for ``fixes`` vs ``regressions`` discordant pairs."""
    n = fixes + regressions
    if n == 0:
        return 1.0
    tail = sum(comb(n, i) for i in range(min(fixes, regressions) + 1))
    return float(min(Fraction(1), Fraction(2 * tail, 2**n)))


def format_p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def case_outcomes(items: Sequence[ItemResult]) -> dict[str, bool]:
    """case id → passed every trial, over judged agent items."""
    out: dict[str, bool] = {}
    for r in items:
        if is_agent_item(r) and r["outcome"] in ("passed", "failed"):
            out[r["case_id"]] = out.get(r["case_id"], True) and r["outcome"] == "passed"
    return out


def _groups(a: dict[str, Any], b: dict[str, Any], key: str) -> list[dict[str, Any]]:
    rows = []
    for name in sorted(set(a.get(key) or {}) | set(b.get(key) or {})):
        ga, gb = (a.get(key) or {}).get(name) or {}, (b.get(key) or {}).get(name) or {}
        ra, rb = ga.get("pass_rate"), gb.get("pass_rate")
        rows.append(
            {
                "name": name,
                "a": ra,
                "a_ci": ga.get("pass_rate_ci"),
                "b": rb,
                "b_ci": gb.get("pass_rate_ci"),
                "delta": None if ra is None or rb is None else round(rb - ra, 6),
            }
        )
    return rows


def _per_pass(summary: dict[str, Any]) -> dict[str, float | None]:
    passed = summary.get("passed") or 0
    tokens = (summary.get("input_tokens") or 0) + (summary.get("output_tokens") or 0)
    return {
        "cost_usd": summary.get("cost_usd"),
        "tokens": tokens,
        "cost_per_pass": round(summary["cost_usd"] / passed, 6) if passed else None,
        "tokens_per_pass": round(tokens / passed, 1) if passed else None,
    }


def compare_reports(
    a: dict[str, Any], b: dict[str, Any], *, allow_different_datasets: bool = False
) -> dict[str, Any]:
    """The comparison of run B against run A (both JSON reports), plain JSON."""
    sha_a = ((a.get("crmbench") or {}).get("dataset") or {}).get("sha256")
    sha_b = ((b.get("crmbench") or {}).get("dataset") or {}).get("sha256")
    if sha_a != sha_b and not allow_different_datasets:
        raise CompareError(
            f"the runs used different datasets (sha256 {str(sha_a)[:12]}… vs "
            f"{str(sha_b)[:12]}…); pass --allow-different-datasets to compare the shared cases"
        )
    items_a, items_b = report_items(a), report_items(b)
    out_a, out_b = case_outcomes(items_a), case_outcomes(items_b)
    shared = sorted(set(out_a) & set(out_b))
    if not shared:
        raise CompareError("the runs share no judged case")
    regressions = [c for c in shared if out_a[c] and not out_b[c]]
    fixes = [c for c in shared if not out_a[c] and out_b[c]]
    both_pass = sum(out_a[c] and out_b[c] for c in shared)
    both_fail = len(shared) - both_pass - len(regressions) - len(fixes)
    p = mcnemar_exact(len(fixes), len(regressions))
    if p < ALPHA and len(fixes) != len(regressions):
        better = "B is better" if len(fixes) > len(regressions) else "B is worse"
        verdict = f"{better}, {format_p(p)}"
    else:
        verdict = f"no detectable difference ({format_p(p)})"
    sa, sb = summarize(items_a), summarize(items_b)
    pass_a = sum(out_a[c] for c in shared)
    pass_b = sum(out_b[c] for c in shared)
    k = max((sa.get("pass_hat_k") or {}).get("k", 1), (sb.get("pass_hat_k") or {}).get("k", 1))
    return {
        "a": _run_label(a),
        "b": _run_label(b),
        "same_dataset": sha_a == sha_b,
        "measure": "pass" if k == 1 else f"pass^{k}",
        "shared_cases": len(shared),
        "only_a": len(set(out_a) - set(out_b)),
        "only_b": len(set(out_b) - set(out_a)),
        "regressions": regressions,
        "fixes": fixes,
        "both_pass": both_pass,
        "both_fail": both_fail,
        "pass_rate_a": round(pass_a / len(shared), 6),
        "pass_rate_a_ci": wilson(pass_a, len(shared)),
        "pass_rate_b": round(pass_b / len(shared), 6),
        "pass_rate_b_ci": wilson(pass_b, len(shared)),
        "p_value": p,
        "verdict": verdict,
        "by_workflow": _groups(sa, sb, "by_workflow"),
        "by_complexity": _groups(sa, sb, "by_complexity"),
        "cost_a": _per_pass(sa),
        "cost_b": _per_pass(sb),
        "cost_delta_usd": round(sb["cost_usd"] - sa["cost_usd"], 6),
    }


def _run_label(report: dict[str, Any]) -> str:
    crm = report.get("crmbench") or {}
    agent = crm.get("agent") or {}
    name = str(agent.get("name") or "?") + (f" ({agent['model']})" if agent.get("model") else "")
    return name + (f" [{crm['label']}]" if crm.get("label") else "")


def render_compare_text(result: dict[str, Any]) -> list[str]:
    """The comparison as terminal lines."""
    r = result

    def pct(rate: float | None, ci: list[float] | None = None) -> str:
        if rate is None:
            return "n/a"
        return f"{rate * 100:.1f}%" + (f" [{ci[0] * 100:.1f}–{ci[1] * 100:.1f}]" if ci else "")

    lines = [
        f"A: {r['a']}   B: {r['b']}   ({r['shared_cases']} shared cases, {r['measure']})",
        f"pass rate: A {pct(r['pass_rate_a'], r['pass_rate_a_ci'])}   "
        f"B {pct(r['pass_rate_b'], r['pass_rate_b_ci'])}   (95 % Wilson intervals)",
        f"regressions: {len(r['regressions'])}   fixes: {len(r['fixes'])}   "
        f"both pass: {r['both_pass']}   both fail: {r['both_fail']}",
        f"McNemar exact test: {r['verdict']}",
    ]
    for title in ("by_complexity", "by_workflow"):
        lines.append(title.replace("_", " ") + ":")
        for g in r[title]:
            delta = "" if g["delta"] is None else f"{g['delta'] * 100:+.1f} pts"
            lines.append(f"  {g['name']:<30} {pct(g['a']):>7} → {pct(g['b']):>7}  {delta}")
    lines.append(
        f"cost: A ${r['cost_a']['cost_usd']:.4f}  B ${r['cost_b']['cost_usd']:.4f}  "
        f"(Δ ${r['cost_delta_usd']:+.4f})"
    )
    lines += [f"regression: {c}" for c in r["regressions"][:20]]
    return lines
