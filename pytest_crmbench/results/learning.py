"""The learning curve of an ordered run: pass rate per window of consecutive conversations.

Items carry ``stream`` and ``seq`` (their position in the stream they ran in). Streams
are interleaved by position (all first items, then all second items, …), so a window of
N holds N conversations that had seen about the same amount of feedback; with one stream
that is simply the order in which items finished. Intervals are 95 %: Wilson score for
each rate, Newcombe's hybrid score interval (method 10, built from the two Wilson
intervals) for the difference last − first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pytest_crmbench.runner.records import ItemResult

Z95 = 1.959963984540054
SPARKS = "▁▂▃▄▅▆▇█"


def wilson(passed: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (stays inside [0, 1], sane at 0 % and 100 %)."""
    if n == 0:
        return (0.0, 1.0)
    p = passed / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def newcombe(first: tuple[int, int], last: tuple[int, int]) -> tuple[float, float]:
    """Newcombe's hybrid score interval of p_last − p_first (independent samples)."""
    (x1, n1), (x2, n2) = first, last
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1)
    l2, u2 = wilson(x2, n2)
    d = p2 - p1
    return (
        d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2),
        d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2),
    )


def stream_order(results: Sequence[ItemResult]) -> list[ItemResult]:
    """Judged agent items of an ordered run, streams interleaved by position."""
    ordered = [r for r in results if r.get("seq") is not None]
    return sorted(ordered, key=lambda r: (r.get("seq", 0), str(r.get("stream", ""))))


def _window(rows: Sequence[ItemResult], start: int) -> dict[str, Any]:
    passed = sum(r["outcome"] == "passed" for r in rows)
    lo, hi = wilson(passed, len(rows))
    return {
        "start": start,
        "end": start + len(rows) - 1,
        "n": len(rows),
        "passed": passed,
        "pass_rate": round(passed / len(rows), 6),
        "ci": [round(lo, 6), round(hi, 6)],
    }


def curve(rows: Sequence[ItemResult], window: int) -> dict[str, Any] | None:
    """The curve over ``rows`` (already in stream order); positions are 1-based. A last
    window shorter than half a window is merged into the one before (a 3-item window
    would make the last rate noise)."""
    if not rows:
        return None
    chunks = [list(rows[i : i + window]) for i in range(0, len(rows), window)]
    if len(chunks) > 1 and len(chunks[-1]) < window / 2:
        tail = chunks.pop()
        chunks[-1] += tail
    windows, start = [], 1
    for chunk in chunks:
        windows.append(_window(chunk, start))
        start += len(chunk)
    first, last = windows[0], windows[-1]
    lo, hi = newcombe((first["passed"], first["n"]), (last["passed"], last["n"]))
    return {
        "window": window,
        "windows": windows,
        "first": first,
        "last": last,
        "delta": round(last["pass_rate"] - first["pass_rate"], 6),
        "delta_ci": [round(lo, 6), round(hi, 6)],
        "delta_ci_method": "newcombe-wilson",
    }


def learning_curve(results: Sequence[ItemResult], window: int) -> dict[str, Any] | None:
    """``summary.learning_curve``: overall and per workflow, or None for an unordered run."""
    rows = [r for r in stream_order(results) if r["outcome"] in ("passed", "failed")]
    overall = curve(rows, window)
    if overall is None:
        return None
    overall["streams"] = len({r.get("stream") for r in rows})
    overall["items"] = len(rows)
    workflows = sorted({str(r.get("workflow")) for r in rows if r.get("workflow")})
    overall["by_workflow"] = {
        w: curve([r for r in rows if r.get("workflow") == w], window) for w in workflows
    }
    return overall


def sparkline(rates: Sequence[float]) -> str:
    """Rates in [0, 1] as block characters (▁ = 0 %, █ = 100 %)."""
    return "".join(SPARKS[min(len(SPARKS) - 1, int(r * len(SPARKS)))] for r in rates)
