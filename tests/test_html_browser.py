"""The HTML reports in a real browser (headless Chromium): they render with no script
error, the charts and the item table are there, a click opens an item's drill-down, and
a full 1,523-item run stays small and opens in seconds. Screenshots are saved under
``.crmbench/screenshots/`` (look at them)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from plugin_support.project import MEMORY, REPO, load_report, make_project

from pytest_crmbench.cli import main
from pytest_crmbench.results.packing import report_items

BROWSER = next(
    (shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)),
    None,
)
pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="no headless Chromium here (apt-get install -y chromium)"
)
SHOTS = Path(os.environ.get("CRMBENCH_SCREENSHOTS", REPO / ".crmbench" / "screenshots"))
ROW = re.compile(r'<tr class="row" data-i="\d+"')  # a rendered row of the item table
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--hide-scrollbars", "--virtual-time-budget=8000")  # fmt: skip


def _chromium(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    assert BROWSER is not None
    return subprocess.run(
        [BROWSER, *FLAGS, "--enable-logging=stderr", "--v=0", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def dump_dom(page: Path, fragment: str = "") -> str:
    """The page's DOM after its scripts ran; fails on any script error."""
    run = _chromium("--dump-dom", page.as_uri() + fragment)
    dom = run.stdout
    assert 'data-ready="yes"' in dom, run.stderr[-2000:]
    assert 'data-js-error="' not in dom  # set by the page's error hook
    console = [ln for ln in run.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert console == []
    return dom


def screenshot(page: Path, name: str, fragment: str = "", size: str = "1400,1600") -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    out = SHOTS / name
    out.unlink(missing_ok=True)
    _chromium(f"--window-size={size}", f"--screenshot={out}", page.as_uri() + fragment)
    assert out.exists() and out.stat().st_size > 10_000  # an image, not a blank
    return out


def test_report_renders_with_charts_table_and_drill_down(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    result = pytester.runpytest(*MEMORY, "--crm-report=noop.json", "--agent", "noop")
    assert result.ret == 1
    report = load_report(pytester.path / "noop.json")
    page = pytester.path / "report.html"
    assert main(["report", str(pytester.path / "noop.json"), "-o", str(page)]) == 0
    dom = dump_dom(page)
    assert dom.count('<svg class="chart"') >= 6
    assert len(ROW.findall(dom)) == len(report_items(report))
    assert 'id="drill" class="open"' not in dom  # closed until clicked
    opened = dump_dom(page, "#click-first")
    assert 'id="drill" class="open"' in opened
    assert 'id="drill-title">CONV-0001' in opened
    drill = opened.split('id="drill"', 1)[1]
    assert "Turn 1" in drill and "user" in drill and "agent" in drill
    assert "missing write" in drill or "missing fact" in drill  # the verdict's reasons
    failed = dump_dom(page, "#case=CONV-0003")
    assert 'id="drill-title">CONV-0003' in failed
    screenshot(page, "report_noop.png")
    screenshot(page, "report_noop_drill.png", "#click-first", size="1400,1000")


def test_compare_page_renders(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    pytester.runpytest(*MEMORY, "--crm-report=a.json")
    pytester.runpytest(*MEMORY, "--crm-report=b.json", "--agent", "noop")
    page = pytester.path / "compare.html"
    a, b = str(pytester.path / "a.json"), str(pytester.path / "b.json")
    assert main(["compare", a, b, "-o", str(page)]) == 1 - 1  # no --fail-on-regression
    run = _chromium("--dump-dom", page.as_uri())
    assert "B is worse" in run.stdout and '<svg class="chart"' in run.stdout
    screenshot(page, "compare_replay_noop.png", size="1400,1000")


def test_full_run_is_small_and_renders_in_seconds(pytester: pytest.Pytester) -> None:
    """The whole shipped suite (1,523 items): JSON < 5 MB, HTML < 10 MB, opens quickly."""
    make_project(pytester, shipped=True)
    result = pytester.runpytest(*MEMORY, "--crm-report=full.json", "-q")
    assert result.ret == 0
    report_path = pytester.path / "full.json"
    assert len(load_report(report_path)["tests"]) == 1523
    assert report_path.stat().st_size < 5_000_000
    page = pytester.path / "full.html"
    assert main(["report", str(report_path), "-o", str(page)]) == 0
    assert page.stat().st_size < 10_000_000
    started = time.monotonic()
    dom = dump_dom(page, "#click-first")
    assert time.monotonic() - started < 30  # the browser's start included
    assert len(ROW.findall(dom)) == 1523
    assert 'id="drill" class="open"' in dom
    screenshot(page, "report_full_replay.png")
