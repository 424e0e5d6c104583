"""The terminal summary printed after a benchmark run (plain text from the summary dict)."""

from __future__ import annotations

from typing import Any

from pytest_crmbench.results.learning import sparkline


def _pct(rate: float | None) -> str:
    return "  n/a" if rate is None else f"{rate * 100:5.1f}%"


def _ci(ci: list[float] | None) -> str:
    """A 95 % Wilson interval as ``[lo–hi]`` in percent (empty when there is none)."""
    return "" if not ci else f" [{ci[0] * 100:.1f}–{ci[1] * 100:.1f}]"


def _secs(value: float) -> str:
    return f"{value:.2f} s" if value >= 1 else f"{value * 1000:.0f} ms"


def _rows(title: str, groups: dict[str, dict[str, Any]]) -> list[str]:
    if not groups:
        return []
    width = max(len(k) for k in groups)
    lines = [f"  {title}:"]
    for name, g in groups.items():
        lines.append(
            f"    {name:<{width}}  {_pct(g['pass_rate'])}{_ci(g.get('pass_rate_ci'))}  "
            f"({g['passed']}/{g['passed'] + g['failed']}"
            + (f", {g['errors']} errors" if g["errors"] else "")
            + ")"
        )
    return lines


def render_summary(summary: dict[str, Any], *, agent: str, store: str) -> list[str]:
    """The summary as terminal lines; ``store`` says where the CRM ran."""
    s = summary
    oracle = "   ORACLE RUN (reference data reached the agent: no gate passes)"
    lines = [
        "",
        "=" * 30 + " crmbench summary " + "=" * 30,
        f"  agent: {agent}   store: {store}" + (oracle if s.get("oracle") else ""),
        f"  items: {s['items']}  passed: {s['passed']}  failed: {s['failed']}  "
        f"errors: {s['errors']}  skipped: {s['skipped']}   (agent items only)",
        f"  pass rate: {_pct(s['pass_rate'])}{_ci(s.get('pass_rate_ci'))}   "
        f"turn pass rate: {_pct(s['turn_pass_rate'])}{_ci(s.get('turn_pass_rate_ci'))}   "
        f"action match: {_pct(s['action_match_rate'])}{_ci(s.get('action_match_rate_ci'))}   "
        f"error rate: {_pct(s['error_rate'])}",
        "  (intervals: 95 % Wilson score)",
    ]
    kinds = s.get("turn_pass_rate_by_kind") or {}
    counts = s.get("turns_by_kind") or {}
    kind_ci = s.get("turn_pass_rate_by_kind_ci") or {}
    if kinds:
        lines.append(
            "  turn pass rate by kind: "
            + "   ".join(
                f"{k} {_pct(v)}{_ci(kind_ci.get(k))} ({counts.get(k, 0)})" for k, v in kinds.items()
            )
        )
    env = s.get("environment") or {}
    if env.get("items"):
        lines.append(
            f"  environment checks (no agent): {env['passed']}/{env['items']} passed"
            + (f", {env['failed']} failed" if env["failed"] else "")
            + (f", {env['errors']} errors" if env["errors"] else "")
        )
    hat = s.get("pass_hat_k")
    if hat:
        lines.append(
            f"  pass^{hat['k']}: {_pct(hat['pass_hat_k'])}{_ci(hat.get('pass_hat_k_ci'))}   "
            f"pass@1: {_pct(hat['pass_at_1'])}{_ci(hat.get('pass_at_1_ci'))}"
            f"   ({hat['cases']} cases)"
        )
    lines += _curve_lines(s.get("learning_curve"))
    lines += _rows("by complexity", s["by_complexity"])
    lines += _rows("by workflow", s["by_workflow"])
    lines += _rows("by family", s["by_family"])
    if s["by_tool"]:
        tools = sorted(s["by_tool"].items(), key=lambda kv: (kv[1]["pass_rate"] or 0, kv[0]))
        lines += _rows("by tool (weakest first, top 10)", dict(tools[:10]))
    if s["input_tokens"] or s["output_tokens"] or s["cost_usd"] or s.get("model_calls"):
        lines.append(
            f"  tokens: {s['input_tokens']} in / {s['output_tokens']} out / "
            f"{s.get('cache_read_tokens', 0)} cache read / "
            f"{s.get('cache_write_tokens', 0)} cache write   "
            f"model calls: {s.get('model_calls', 0)} ({s.get('retries', 0)} retries)   "
            f"cost: ${s['cost_usd']:.4f}"
        )
    if s.get("cache_hits") or s.get("cache_misses"):
        lines.append(
            f"  response cache: {s['cache_hits']} hits / {s.get('cache_misses', 0)} misses   "
            f"saved: ${s.get('cache_saved_usd', 0.0):.4f}"
        )
    slow = [x for x in s.get("slowest", []) if x.get("duration_s")]
    if slow:
        lines.append(
            "  slowest: " + ", ".join(f"{x['case_id']} {_secs(x['duration_s'])}" for x in slow[:5])
        )
    if s["top_failure_reasons"]:
        lines.append("  top failure reasons:")
        lines += [f"    {r['count']:>5}  {r['reason']}" for r in s["top_failure_reasons"][:5]]
    if s.get("share_any_turn_state_passed") is not None:
        lines.append(
            "  upstream-comparable: conversations with ≥1 passing turn (state) "
            f"{_pct(s['share_any_turn_state_passed'])}, (reply) "
            f"{_pct(s['share_any_turn_reply_passed'])}"
        )
    return lines


def _curve_lines(lc: dict[str, Any] | None) -> list[str]:
    """One compact row: first → last window, the change with its 95 % interval, and a
    sparkline of every window."""
    if not lc:
        return []
    lo, hi = lc["delta_ci"]
    streams = lc.get("streams", 1)
    return [
        f"  learning curve (window {lc['window']}, {lc.get('items', 0)} conversations, "
        f"{streams} stream{'s' if streams != 1 else ''}): "
        f"{_pct(lc['first']['pass_rate']).strip()} → {_pct(lc['last']['pass_rate']).strip()}  "
        f"Δ {lc['delta'] * 100:+.1f} pts (95% CI {lo * 100:+.1f}..{hi * 100:+.1f})  "
        + sparkline([w["pass_rate"] for w in lc["windows"]])
    ]
