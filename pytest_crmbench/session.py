"""The controller's plugin objects: what a run adds up to, and the xdist-only hooks.

Registered in ``pytest_configure`` by role, as pytest-xdist does with its ``DSession``:
the controller (or a plain run) collects every item's result, writes the results stream,
computes the summary and the gate, and owns the JSON report's ``crmbench`` section;
:class:`XdistController` exists only when xdist runs workers.
"""

from __future__ import annotations

import contextlib
import importlib.util
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from pytest_crmbench.items import Case
from pytest_crmbench.results import Gate, evaluate_gate, render_summary, summarize
from pytest_crmbench.runner.records import ItemResult
from pytest_crmbench.state import CrmState

USER_PROPERTY = "crmbench"


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("pytest-crmbench", "pytest", "psycopg", "anthropic", "openai", "pytest-xdist"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


class CrmSession:
    """Results, summary, gate and report of one run (the controller, or a plain run)."""

    def __init__(self, config: pytest.Config, state: CrmState) -> None:
        self.config = config
        self.state = state

    # -- results ----------------------------------------------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == USER_PROPERTY and isinstance(value, dict):
                self.collect(value)  # type: ignore[arg-type]  # plain JSON of an ItemResult
                return

    def collect(self, result: ItemResult) -> None:
        self.state.results.append(result)
        if self.state.stream is not None:
            self.state.stream.write(result)

    def finish(self) -> None:
        """Summary and gate, once, over this run's results and the resumed ones."""
        state = self.state
        if state.summary is not None:
            return
        # A case re-run after a resume replaces its earlier (errored) result.
        latest = {(r["case_id"], r.get("trial", 1), r.get("family")): r for r in state.previous}
        latest.update(
            {(r["case_id"], r.get("trial", 1), r.get("family")): r for r in state.results}
        )
        everything = list(latest.values())
        if not everything:
            return
        state.summary = summarize(everything)
        s = state.settings
        gate = Gate(s.min_pass_rate, s.baseline, s.max_regressions, s.max_error_rate)
        if gate.active:
            state.gate = evaluate_gate(gate, everything).as_dict()

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.finish()
        if self.state.gate is not None:  # the gate decides the exit status
            session.exitstatus = (
                pytest.ExitCode.OK if self.state.gate["passed"] else pytest.ExitCode.TESTS_FAILED
            )

    @pytest.hookimpl(optionalhook=True)
    def pytest_json_modifyreport(self, json_report: dict[str, Any]) -> None:
        self.finish()
        state = self.state
        if state.summary is None:
            return
        s = state.settings
        if state.gate is not None:  # the gate decides the exit status (pytest_sessionfinish)
            json_report["exitcode"] = int(
                pytest.ExitCode.OK if state.gate["passed"] else pytest.ExitCode.TESTS_FAILED
            )
        json_report["crmbench"] = {
            "summary": state.summary,
            "gate": state.gate,
            "settings": s.public(),
            "agent": {"name": s.agent, "model": s.agent_model, "base_url": s.agent_base_url},
            "dataset": state.dataset_info,
            "backend": s.backend,
            "postgres_provider": state.provider if s.backend == "postgres" else None,
            "resumed_items": len(state.previous),
            "oracle": bool(state.summary.get("oracle")),
            "feedback": s.feedback,
            "versions": _versions(),
        }

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        self.finish()
        state = self.state
        if state.summary is None:
            return
        s = state.settings
        where = s.backend if s.backend == "memory" else f"postgres: {state.provider}"
        for line in render_summary(state.summary, agent=s.agent, store=where):
            terminalreporter.write_line(line)
        if state.gate is not None:
            verdict = "PASSED" if state.gate["passed"] else "FAILED"
            terminalreporter.write_sep(
                "=",
                f"crmbench gate {verdict}",
                bold=True,
                green=state.gate["passed"],
                red=not state.gate["passed"],
            )
            for reason in state.gate["reasons"]:
                terminalreporter.write_line(f"  {reason}")
            for case in state.gate["regressions"][:20]:
                terminalreporter.write_line(f"  regression: {case}")

    def pytest_unconfigure(self) -> None:
        state = self.state
        if state.gate is not None:
            # After pytest's own stats line: the gate decides the exit status, so it goes last.
            reporter = self.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                verdict = "PASSED" if state.gate["passed"] else "FAILED"
                reporter.write_line(
                    f"crmbench gate {verdict}: " + "; ".join(state.gate["reasons"]),
                    green=state.gate["passed"],
                    red=not state.gate["passed"],
                    bold=True,
                )


def deselect_resumed(config: pytest.Config, state: CrmState, items: list[pytest.Item]) -> None:
    """``--crm-resume``: judged items are done; errored or skipped ones run again. (Runs
    wherever items are collected: a plain run, or each xdist worker.)"""
    if not state.previous:
        return
    done = {
        (r["case_id"], r.get("trial", 1))
        for r in state.previous
        if r.get("outcome") in ("passed", "failed")
    }
    keep, skip = [], []
    for item in items:
        case = item_case(item)
        if case is not None and (case.case_id, case.trial) in done:
            skip.append(item)
        else:
            keep.append(item)
    if skip:
        config.hook.pytest_deselected(items=skip)
        items[:] = keep


def item_case(item: pytest.Item) -> Case | None:
    """The benchmark case a collected item runs, if it is one."""
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get("crm_case") if callspec is not None else None
    return case if isinstance(case, Case) else None


class XdistController:
    """xdist-only hooks, registered only when xdist runs (as pytest-randomly does)."""

    def __init__(self, session: CrmSession, cases_of_module: Any) -> None:
        self.session = session
        self.state = session.state
        self._cases_of_module = cases_of_module  # (module, path) -> list[Case]
        self._index: dict[str, dict[str, Case]] = {}  # module path -> test id -> case

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["crmbench_run_id"] = self.state.run_id
        if self.state.admin_url:
            node.workerinput["crmbench_admin_url"] = self.state.admin_url
            node.workerinput["crmbench_provider"] = self.state.provider

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if str(report.when) != "???" or not report.failed:
            return
        # The worker died running this item, so it sent no result: record an error.
        case = self.case_of(report.nodeid)
        if case is not None:
            self.session.collect(case.unjudged_result("worker crashed while running this item"))

    def case_of(self, nodeid: str) -> Case | None:
        """The case behind a node id, from the same collection code the workers ran (the
        controller of an xdist run collects nothing itself)."""
        path, _, rest = nodeid.partition("::")
        test_id = rest.rpartition("[")[2].removesuffix("]") if rest.endswith("]") else ""
        if not test_id:
            return None
        if path not in self._index:
            self._index[path] = self._load(Path(str(self.session.config.rootpath), path))
        return self._index[path].get(test_id)

    def _load(self, path: Path) -> dict[str, Case]:
        name = f"_crmbench_index_{abs(hash(str(path)))}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            return {}
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
            cases = self._cases_of_module(module, path)
        except Exception:  # best effort: the crash is reported by xdist in any case
            return {}
        finally:
            sys.modules.pop(name, None)
        return {c.test_id: c for c in cases}
