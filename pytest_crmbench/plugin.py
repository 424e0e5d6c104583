"""pytest entry point (``pytest11``): options, parametrization, results, gate, xdist.

Thin glue: the CRM, the agents and the runner know nothing of pytest. Roles follow
pytest-xdist's pattern: the controller (or a plain run) owns the PostgreSQL server, the
results stream, the summary and the gate; workers run items and send plain-JSON
results home on their test reports.
"""

from __future__ import annotations

import contextlib
import gc
import platform
import re
from collections.abc import Generator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from pytest_crmbench.cases_loader import conversation_cases, golden_cases, marker_lines
from pytest_crmbench.fixtures import (  # noqa: F401  (fixtures are registered by import)
    agent_settings,
    crm,
    crm_agent,
    crm_case,
    crm_result,
    crm_runner,
    crm_settings,
    crm_store,
    crm_world,
)
from pytest_crmbench.options import Settings, add_options
from pytest_crmbench.runner.results import (
    Gate,
    ResultsStream,
    evaluate_gate,
    read_jsonl,
    summarize,
)
from pytest_crmbench.state import ARC_DATASET, RESULT, STATE, CrmState, new_run_id, worker_id

MARKERS = (
    "conformance: CRM rule/message/cascade/search cases run against every store",
    "differential: hypothesis differential test of the memory and PostgreSQL stores",
    "docker: needs a Docker engine (testcontainers); skipped when none answers",
    "postgres: needs a PostgreSQL server (embedded, Docker or URL)",
)
USER_PROPERTY = "crmbench"


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def _is_benchmark_run(config: pytest.Config) -> bool:
    """Whether this run targets benchmark items (cases/, golden/, a dataset), not plain tests.

    Decides the default JSON report and the controller's eager PostgreSQL start.
    """
    if config.getoption("crmbench_dataset"):
        return True
    root = Path(str(config.rootpath))
    bench = [root / "cases", root / "golden"]
    args = [a.split("::")[0] for a in config.args] or [str(root)]
    for arg in args:
        path = Path(arg).resolve()
        if path == root or any(path == b or b in path.parents or path in b.parents for b in bench):
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for marker in (*MARKERS, *marker_lines()):
        config.addinivalue_line("markers", marker)
    settings = Settings.from_config(config)
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        _check_agent(settings, ready=_is_benchmark_run(config) and not config.option.collectonly)
    state = CrmState(
        settings=settings,
        is_worker=workerinput is not None,
        worker_id=worker_id(config),
        run_id=(workerinput or {}).get("crmbench_run_id") or new_run_id(),
    )
    config.stash[STATE] = state
    if workerinput is not None:
        state.admin_url = workerinput.get("crmbench_admin_url")
        state.provider = workerinput.get("crmbench_provider")
    benchmark = _is_benchmark_run(config)
    if settings.results and settings.resume:
        state.previous = list(read_jsonl(settings.results))
    if state.is_worker:
        return
    # Controller (or plain run) only from here on.
    if (
        benchmark
        and settings.report.lower() != "none"
        and hasattr(config.option, "json_report")
        and not config.option.json_report
    ):
        config.option.json_report = True
        if config.option.json_report_file == ".report.json":
            config.option.json_report_file = settings.report
        Path(config.option.json_report_file).parent.mkdir(parents=True, exist_ok=True)
    if settings.results:
        state.stream = ResultsStream(settings.results)
    if config.pluginmanager.hasplugin("xdist") and getattr(config.option, "numprocesses", None):
        config.pluginmanager.register(XdistController(state), "crmbench-xdist-controller")
        if benchmark and settings.backend == "postgres" and not config.option.collectonly:
            state.ensure_server()


def _check_agent(settings: Settings, *, ready: bool = True) -> None:
    """A usage error now, not one error per item later, for an agent that cannot load or
    is not ready (``check_ready()``: e.g. a missing API key), a bad price table or judge."""
    from pytest_crmbench.agents.base import AgentUnavailable
    from pytest_crmbench.agents.judge import make_judge
    from pytest_crmbench.agents.loading import AgentLoadError, make_agent, resolve_agent_factory
    from pytest_crmbench.agents.pricing import PriceError, price_table

    name = settings.agent
    try:
        factory = resolve_agent_factory(name)  # built-ins import their SDKs only when used
    except AgentLoadError as exc:
        raise pytest.UsageError(f"--agent: {exc}") from exc
    try:
        price_table(settings.agent_prices)
    except PriceError as exc:
        raise pytest.UsageError(f"--agent-prices: {exc}") from None
    try:
        judge = make_judge(settings.judge)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    if not ready:
        return
    try:
        if judge is not None:
            judge.check_ready()
        if callable(getattr(factory, "check_ready", None)):
            agent = make_agent(name, **agent_settings(settings))
            check = getattr(agent, "check_ready", None)
            if callable(check):
                check()
    except (AgentUnavailable, AgentLoadError, ValueError) as exc:
        raise pytest.UsageError(str(exc)) from None


class XdistController:
    """xdist-only hooks, registered only when xdist runs (as pytest-randomly does)."""

    def __init__(self, state: CrmState) -> None:
        self.state = state

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["crmbench_run_id"] = self.state.run_id
        if self.state.admin_url:
            node.workerinput["crmbench_admin_url"] = self.state.admin_url
            node.workerinput["crmbench_provider"] = self.state.provider


def pytest_unconfigure(config: pytest.Config) -> None:
    if _CONFIG.get("config") is config:  # nested (pytester) sessions must not leak into ours
        del _CONFIG["config"]
    state = config.stash.get(STATE, None)
    if state is None:
        return
    if state.gate is not None and not state.is_worker:
        # After pytest's own stats line: the gate decides the exit status, so it goes last.
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            verdict = "PASSED" if state.gate["passed"] else "FAILED"
            reporter.write_line(
                f"crmbench gate {verdict}: " + "; ".join(state.gate["reasons"]),
                green=state.gate["passed"],
                red=not state.gate["passed"],
                bold=True,
            )
    state.stop()


# == collection ======================================================================
def _module_files(metafunc: pytest.Metafunc, attr: str, default: str) -> tuple[str, ...]:
    module = metafunc.module
    pattern = getattr(module, attr, default)
    base = Path(str(metafunc.definition.path)).parent
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    files = sorted({str(p) for pat in patterns for p in base.glob(pat)})
    if not files:
        raise pytest.UsageError(f"{metafunc.definition.path}: no files match {patterns}")
    return tuple(files)


def _dataset_paths(raw: str) -> tuple[str, ...]:
    out: list[str] = []
    for part in (p.strip() for p in raw.split(",") if p.strip()):
        path = Path(part)
        if path.is_dir():
            out += sorted(str(p) for p in path.glob("*.jsonl"))
        elif path.is_file():
            out.append(str(path))
        else:
            raise pytest.UsageError(f"--crm-dataset: no such file or folder: {part}")
    return tuple(out)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "crm_case" not in metafunc.fixturenames:
        return
    state = metafunc.config.stash[STATE]
    trials = state.settings.trials
    kind = getattr(metafunc.module, "crmbench_kind", "conversations")
    if kind == "golden":
        cases = golden_cases(_module_files(metafunc, "crmbench_golden", "*.json"), trials)
    else:
        if state.settings.dataset:
            paths = _dataset_paths(state.settings.dataset)
        else:
            paths = _module_files(metafunc, "crmbench_dataset", "*.jsonl")
        try:
            cases, dataset = conversation_cases(paths, trials)
        except Exception as exc:  # a malformed dataset stops collection with its message
            raise pytest.UsageError(str(exc)) from exc
        state.dataset_info = {"files": [str(f) for f in dataset.files], "sha256": dataset.sha256}
        if dataset.defects:  # only imported (Arc) conversations have entries
            metafunc.config.stash[ARC_DATASET] = True
    params = [
        pytest.param(
            c,
            id=c.test_id,
            marks=[getattr(pytest.mark, m) for m in c.markers()]
            + _defect_marks(c, state.settings.arc_defects),
        )
        for c in cases
    ]
    metafunc.parametrize("crm_case", params, indirect=True)


def _defect_marks(case: Any, mode: str) -> list[pytest.MarkDecorator]:
    """An imported conversation with a dataset defect is collected but not run: skipped
    (or xfail with ``--crm-arc-defects xfail``) with the defect named."""
    if not getattr(case, "defects", ()):
        return []
    from pytest_crmbench.dataset.defects import skip_reason

    reason = skip_reason(case.defects)
    if mode == "xfail":
        return [pytest.mark.xfail(reason=reason, run=False)]
    return [pytest.mark.skip(reason=reason)]


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Move the collected items and datasets (long-lived, many objects) out of the
    garbage collector's sight: every later collection, and pytest's own at exit, skips
    them. Without it a full-suite ``--co`` spends ~0.7 s in ``gc.collect``."""
    if session.config.stash[STATE].dataset_info:
        gc.freeze()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    state = config.stash[STATE]
    if not state.previous:
        return
    # Judged items are done; errored or skipped ones are run again.
    done = {
        (r["case_id"], r.get("trial", 1))
        for r in state.previous
        if r.get("outcome") in ("passed", "failed")
    }
    keep, skip = [], []
    for item in items:
        case = getattr(item, "callspec", None)
        param = case.params.get("crm_case") if case is not None else None
        if param is not None and (param.case_id, param.trial) in done:
            skip.append(item)
        else:
            keep.append(item)
    if skip:
        config.hook.pytest_deselected(items=skip)
        items[:] = keep


# == results ==========================================================================
def _error_result(item: pytest.Item, reason: str) -> dict[str, Any] | None:
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get("crm_case") if callspec is not None else None
    if case is None:
        return None
    conv = case.conversation
    return {
        "case_id": case.case_id,
        "test_id": case.test_id,
        "family": case.kind,
        "trial": case.trial,
        "workflow": getattr(conv, "workflow", None),
        "complexity": getattr(conv, "complexity", "simple"),
        "tools": sorted({c.tool for t in conv.turns for c in t.expected_calls}) if conv else [],
        "passed": False,
        "outcome": "error",
        "error": reason,
        "turns": [],
    }


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    result = item.stash.get(RESULT, None)
    if call.when == "setup" and report.failed:
        reason = str(call.excinfo.value) if call.excinfo else "setup failed"
        result = _error_result(item, reason.splitlines()[0] if reason else "setup failed")
    elif call.when == "setup" and report.skipped and result is None:
        result = _error_result(item, str(call.excinfo.value) if call.excinfo else "skipped")
        if result is not None:
            result["outcome"] = "skipped"
    elif call.when != "call" or result is None:
        return
    if result is None:
        return
    if call.when == "call" and report.failed and result["outcome"] == "passed":
        result = {**result, "passed": False, "outcome": "failed"}
    item.stash[RESULT] = result
    # Plain JSON only: reports travel through xdist.
    report.user_properties.append((USER_PROPERTY, result))  # already plain JSON


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for name, value in report.user_properties:
        if name == USER_PROPERTY and isinstance(value, dict):
            _collect(report, value)
            return
    if str(report.when) == "???" and report.failed:  # xdist: the worker died running this item
        crashed = _crashed_result(report.nodeid)
        if crashed is not None:
            _collect(report, crashed)


_ITEM_RE = re.compile(
    r"::test_(conversation|golden)\[(([A-Z]{2,5}-[A-Z]?\d+)[^\]]*?)(?:-t(\d+))?\]$"
)


def _crashed_result(nodeid: str) -> dict[str, Any] | None:
    """An error result for a benchmark item whose worker crashed (no report of its own)."""
    match = _ITEM_RE.search(nodeid)
    if match is None:
        return None
    return {
        "case_id": match.group(3),
        "test_id": match.group(2) + (f"-t{match.group(4)}" if match.group(4) else ""),
        "family": "conversation" if match.group(1) == "conversation" else "golden",
        "trial": int(match.group(4) or 1),
        "passed": False,
        "outcome": "error",
        "error": "worker crashed while running this item",
        "turns": [],
    }


def _collect(report: pytest.TestReport, result: dict[str, Any]) -> None:
    config = _CONFIG.get("config")
    if config is None:
        return
    state = config.stash[STATE]
    if state.is_worker:
        return
    state.results.append(result)
    if state.stream is not None:
        state.stream.write(result)


_CONFIG: dict[str, pytest.Config] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    _CONFIG["config"] = session.config


@pytest.hookimpl(optionalhook=True)
def pytest_json_runtest_metadata(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    result = item.stash.get(RESULT, None)
    if result is None or call.when not in ("setup", "call"):
        return None
    return {"crmbench": result}  # plain JSON (made so by the crm_result fixture)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("pytest-crmbench", "pytest", "psycopg", "anthropic", "openai", "pytest-xdist"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


def _finish(config: pytest.Config) -> CrmState | None:
    state = config.stash.get(STATE, None)
    if state is None or state.is_worker or state.summary is not None:
        return state
    # A case re-run after a resume replaces its earlier (errored) result.
    latest = {(r["case_id"], r.get("trial", 1), r.get("family")): r for r in state.previous}
    latest.update({(r["case_id"], r.get("trial", 1), r.get("family")): r for r in state.results})
    everything = list(latest.values())
    if not everything:
        return state
    state.summary = summarize(everything)
    s = state.settings
    gate = Gate(s.min_pass_rate, s.baseline, s.max_regressions, s.max_error_rate)
    if gate.active:
        state.gate = evaluate_gate(gate, everything).as_dict()
    return state


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = _finish(session.config)
    if state is None or state.is_worker or state.gate is None:
        return
    session.exitstatus = (
        pytest.ExitCode.OK if state.gate["passed"] else pytest.ExitCode.TESTS_FAILED
    )


@pytest.hookimpl(optionalhook=True)
def pytest_json_modifyreport(json_report: dict[str, Any]) -> None:
    config = _CONFIG.get("config")
    if config is None:
        return
    state = _finish(config)
    if state is None or state.summary is None:
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
        "versions": _versions(),
    }


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = config.stash.get(STATE, None)
    if state is None or not _is_benchmark_run(config):
        return None
    s = state.settings
    where = s.backend if s.backend == "memory" else f"postgres ({s.postgres})"
    return [f"crmbench: agent={s.agent} backend={where} trials={s.trials}"]


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = _finish(config)
    if state is None or state.summary is None:
        return
    from pytest_crmbench.summary_table import render_summary

    for line in render_summary(state.summary, state.provider, state.settings):
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
