"""``crmbench report``, ``crmbench compare`` and ``crmbench merge``: the researcher's loop
over finished runs' JSON reports (no pytest, no network)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pytest_crmbench.results.compare import CompareError, compare_reports, render_compare_text
from pytest_crmbench.results.html import render_compare, render_report
from pytest_crmbench.results.merge import MergeError, load_report, merge_reports


def _fail(command: str, what: str) -> int:
    """One line on stderr, exit status 2 (as the other subcommands do)."""
    print(f"crmbench {command}: {what}", file=sys.stderr)
    return 2


def _load(command: str, path: str) -> dict[str, Any] | str:
    try:
        return load_report(path)
    except MergeError as exc:
        return f"{exc}; give the JSON report of a benchmark run (--crm-report)"


def _write(path: str, text: str) -> None:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")


def _cmd_report(args: argparse.Namespace) -> int:
    """One self-contained HTML page of a run."""
    report = _load("report", args.run)
    if isinstance(report, str):
        return _fail("report", report)
    try:
        _write(args.output, render_report(report))
    except OSError as exc:
        return _fail("report", f"cannot write {args.output} ({exc.strerror or exc})")
    print(f"wrote {args.output} ({Path(args.output).stat().st_size / 1e6:.1f} MB)")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    """B against A: per-case deltas, McNemar's exact test, per-group deltas, cost."""
    reports = [_load("compare", p) for p in (args.a, args.b)]
    for r in reports:
        if isinstance(r, str):
            return _fail("compare", r)
    a, b = reports
    assert isinstance(a, dict) and isinstance(b, dict)
    try:
        result = compare_reports(a, b, allow_different_datasets=args.allow_different_datasets)
    except CompareError as exc:
        return _fail("compare", str(exc))
    if args.output:
        try:
            _write(args.output, render_compare(result))
        except OSError as exc:
            return _fail("compare", f"cannot write {args.output} ({exc.strerror or exc})")
    if args.json:
        json.dump(result, sys.stdout, indent=1, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        for line in render_compare_text(result):
            print(line)
        if args.output:
            print(f"wrote {args.output}")
    return 1 if args.fail_on_regression and result["regressions"] else 0


def _cmd_merge(args: argparse.Namespace) -> int:
    """The shards of one run as one report, its summary recomputed."""
    reports = []
    for path in args.shards:
        r = _load("merge", path)
        if isinstance(r, str):
            return _fail("merge", r)
        reports.append(r)
    try:
        merged = merge_reports(reports, args.shards)
    except MergeError as exc:
        return _fail("merge", f"{exc}; merge the --crm-shard K/N reports of one run")
    try:
        _write(args.output, json.dumps(merged, separators=(",", ":"), ensure_ascii=False))
    except OSError as exc:
        return _fail("merge", f"cannot write {args.output} ({exc.strerror or exc})")
    s = merged["crmbench"]["summary"]
    print(
        f"wrote {args.output}: {len(merged['tests'])} tests from {len(reports)} shards, "
        f"{s['items']} agent items, pass rate {s['pass_rate']}"
    )
    return 0


def add_parser(sub: Any) -> None:
    report = sub.add_parser("report", help="one self-contained HTML page of a run's JSON report")
    report.add_argument("run", help="JSON report of a run (e.g. .crmbench/report.json)")
    report.add_argument("-o", "--output", default="report.html", help="HTML file to write")
    report.set_defaults(func=_cmd_report)
    compare = sub.add_parser("compare", help="compare run B with run A (McNemar's exact test)")
    compare.add_argument("a", help="JSON report of the baseline run A")
    compare.add_argument("b", help="JSON report of the new run B")
    compare.add_argument("-o", "--output", help="also write an HTML page")
    compare.add_argument("--json", action="store_true", help="print the comparison as JSON")
    compare.add_argument(
        "--fail-on-regression", action="store_true", help="exit 1 when a case regressed"
    )
    compare.add_argument(
        "--allow-different-datasets",
        action="store_true",
        help="compare the shared cases of runs on different datasets",
    )
    compare.set_defaults(func=_cmd_compare)
    merge = sub.add_parser("merge", help="merge the reports of --crm-shard runs into one")
    merge.add_argument("shards", nargs="+", help="the shards' JSON reports")
    merge.add_argument("-o", "--output", required=True, help="merged JSON report to write")
    merge.set_defaults(func=_cmd_merge)
