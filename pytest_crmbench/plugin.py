"""pytest entry point (``pytest11``): options, parametrization, results, gate, xdist.

Thin glue: the CRM, the agents and the runner know nothing of pytest. Roles follow
pytest-xdist's pattern: the controller (or a plain run) owns the PostgreSQL server, the
results stream, the summary and the gate; workers run items and send plain-JSON
results home on their test reports.
"""

from __future__ import annotations

import atexit
import functools
import gc
import itertools
from collections.abc import Generator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pytest_crmbench.agents.base import AgentUnavailable
from pytest_crmbench.agents.endpoints import close_shared_clients
from pytest_crmbench.agents.judge import make_judge
from pytest_crmbench.agents.loading import (
    AgentLoadError,
    make_agent,
    resolve_agent_factory,
    warm_up,
)
from pytest_crmbench.agents.pricing import PriceError, price_table
from pytest_crmbench.dataset import answer_key
from pytest_crmbench.dataset.defects import skip_reason
from pytest_crmbench.dataset.loader import Dataset
from pytest_crmbench.fixtures import (  # noqa: F401  (fixtures are registered by import)
    agent_settings,
    build_agent,
    build_runner,
    crm,
    crm_agent,
    crm_case,
    crm_result,
    crm_runner,
    crm_settings,
    crm_store,
    crm_world,
)
from pytest_crmbench.inflight import IN_FLIGHT, InFlight
from pytest_crmbench.items import (
    Case,
    conversation_cases,
    golden_cases,
    item_case,
    marker_lines,
)
from pytest_crmbench.options import Settings, add_options
from pytest_crmbench.postgres.server import redact_url
from pytest_crmbench.results import ResultsStream
from pytest_crmbench.results.stream import read_stream
from pytest_crmbench.results.summary import slim_result
from pytest_crmbench.runner.records import ItemResult
from pytest_crmbench.session import (
    DATASET_PROPERTY,
    USER_PROPERTY,
    CrmSession,
    WorkerResults,
    XdistController,
    check_stream_order,
    deselect_resumed,
    deselect_shard,
    order_stream,
    stream_marks,
)
from pytest_crmbench.state import (
    ARC_DATASET,
    KEYWORDS,
    RESULT,
    RESULT_TEXT,
    SLIM,
    STATE,
    STREAM,
    CrmState,
    new_run_id,
    reach_postgres,
    worker_id,
)

MARKERS = (
    "conformance: CRM rule/message/cascade/search cases run against every store",
    "differential: hypothesis differential test of the memory and PostgreSQL stores",
    "docker: needs a Docker engine (testcontainers); skipped when none answers",
    "postgres: needs a PostgreSQL server (embedded, Docker or URL)",
)


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


PATH_OPTIONS = ("--crm-dataset", "--crm-baseline", "--crm-results", "--crm-report")


def _check_path_options(config: pytest.Config) -> None:
    """``--crm-dataset /elsewhere/x.jsonl`` (space form): pytest reads the command line
    before plugins load, takes the path for a test path and moves its rootdir there
    (losing the project's ini). Say so, and which form works, before anything runs."""
    args = [str(a) for a in config.invocation_params.args]
    here = Path(config.invocation_params.dir).resolve()
    for flag, value in itertools.pairwise(args):
        if flag not in PATH_OPTIONS or value.startswith("-"):
            continue
        path = (here / value).resolve()
        if path != here and here not in path.parents:
            raise pytest.UsageError(
                f"{flag} {value}: pytest takes a path after a space for a test path and moves "
                f"its rootdir; write {flag}={value}"
            )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for marker in (*MARKERS, *marker_lines()):
        config.addinivalue_line("markers", marker)
    _check_path_options(config)
    settings = Settings.from_config(config)
    workerinput = getattr(config, "workerinput", None)
    answer_key.protect_shipped()  # before any agent code is imported
    mark = len(answer_key.thread_violations())  # pytest's thread: loading and building agents
    if workerinput is None:
        check_stream_order(config, settings.ordered)
        _check_agent(settings, ready=_is_benchmark_run(config) and not config.option.collectonly)
    state = CrmState(
        settings=settings,
        is_worker=workerinput is not None,
        worker_id=worker_id(config),
        run_id=(workerinput or {}).get("crmbench_run_id") or new_run_id(),
    )
    config.stash[STATE] = state
    state.answer_key_mark = mark
    if workerinput is not None:
        handoff = workerinput.get("crmbench_server_handoff")  # where the server will be
        state.handoff = Path(handoff) if handoff else None
    benchmark = _is_benchmark_run(config)
    if settings.results and settings.resume:
        part = read_stream(settings.results)
        state.previous = [slim_result(r) for r in part.results]  # the summary's part only
        state.resumed_header = part.header
        if part.header is not None:
            _check_resumable(settings, part.header)
            state.stream_started = True  # this run continues the resumed run's part
            state.provider = state.provider or part.header.get("provider")
    xdist_controller = (
        not state.is_worker
        and config.pluginmanager.hasplugin("xdist")
        and bool(getattr(config.option, "numprocesses", None))
    )
    if settings.concurrency > 1 and not xdist_controller:  # where items run
        in_flight = InFlight(
            config,
            settings.concurrency,
            lambda store, world, suffix: build_runner(config, store, world, suffix),
            lambda: build_agent(settings),
        )
        config.stash[IN_FLIGHT] = in_flight
        config.pluginmanager.register(in_flight, "crmbench-in-flight")
    if benchmark and not config.option.collectonly:
        _freeze_at_exit()
        if not xdist_controller:  # an SDK's import overlaps collection and the server start
            _warm_up_agent(settings.agent)
    if state.is_worker:
        config.pluginmanager.register(WorkerResults(), "crmbench-worker-results")
        return
    # Controller (or plain run) only from here on.
    session = CrmSession(config, state)
    if (
        benchmark
        and not config.option.collectonly
        and settings.report.lower() != "none"
        and hasattr(config.option, "json_report")
        and not config.option.json_report
    ):
        config.option.json_report = True
        session.default_report = True
        omit = list(getattr(config.option, "json_report_omit", None) or [])
        # Keywords repeat the markers the item records hold; collectors are not results.
        config.option.json_report_omit = [
            *omit,
            *(o for o in ("keywords", "collectors") if o not in omit),
        ]
        if config.option.json_report_file == ".report.json":
            config.option.json_report_file = settings.report
        Path(config.option.json_report_file).parent.mkdir(parents=True, exist_ok=True)
    if settings.results:
        state.stream = ResultsStream(settings.results)
    config.pluginmanager.register(session, "crmbench-session")
    if xdist_controller:
        controller = XdistController(
            session, lambda m, p: _module_cases(m, p, settings, _collect_cache(config))[0]
        )
        config.pluginmanager.register(controller, "crmbench-xdist-controller")
    if benchmark and settings.backend == "postgres" and not config.option.collectonly:
        if xdist_controller:  # joined before the first item is scheduled
            state.start_server_in_background()
        else:  # meanwhile, an SDK's import goes on in the background
            reach_postgres(state)


def _check_resumable(settings: Settings, header: dict[str, Any]) -> None:
    """``--crm-resume`` completes the same run only: any difference is a usage error."""
    before = header.get("identity") or {}
    now = settings.identity()
    diffs = [
        f"{key.replace('_', '-')} {before.get(key)!r} → {now[key]!r}"
        for key in now
        if key in before and before[key] != now[key]
    ]
    if diffs:
        raise pytest.UsageError(
            f"--crm-resume: {settings.results} holds another run ({'; '.join(diffs)}); "
            "resume with the same options, or write to a new --crm-results file"
        )


def _check_agent(settings: Settings, *, ready: bool = True) -> None:
    """A usage error now, not one error per item later, for an agent that cannot load or
    is not ready (``check_ready()``: e.g. a missing API key), a bad price table or judge."""
    name = settings.agent
    try:
        with answer_key.agent_code():  # importing the agent's module runs agent code
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
            with answer_key.agent_code():
                agent = make_agent(name, **agent_settings(settings))
            check = getattr(agent, "check_ready", None)
            if callable(check):
                check()
    except (AgentUnavailable, AgentLoadError, ValueError) as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None:
        state.stop()
    close_shared_clients()  # the model API clients every agent of this process shared


# == collection ======================================================================
def _module_files(module: ModuleType, path: Path, attr: str, default: str) -> tuple[str, ...]:
    pattern = getattr(module, attr, default)
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    files = sorted({str(p) for pat in patterns for p in path.parent.glob(pat)})
    if not files:
        raise pytest.UsageError(f"{path}: no files match {patterns}")
    return tuple(files)


def _dataset_paths(raw: str) -> tuple[str, ...]:
    out: list[str] = []
    for part in (p.strip() for p in raw.split(",") if p.strip()):
        path = Path(part)
        if path.is_dir():
            found = sorted(str(p) for p in path.glob("*.jsonl"))
            if not found:
                raise pytest.UsageError(f"--crm-dataset: {part} holds no *.jsonl dataset")
            out += found
        elif path.is_file():
            out.append(str(path))
        else:
            raise pytest.UsageError(f"--crm-dataset: no such file or folder: {part}")
    return tuple(out)


def _collect_cache(config: pytest.Config) -> Path | None:
    """pytest's cache folder for collected datasets (None with ``-p no:cacheprovider``)."""
    cache = getattr(config, "cache", None)
    return cache.mkdir("crmbench-collect") if cache is not None else None


def _module_cases(
    module: ModuleType, path: Path, settings: Settings, cache_dir: Path | None = None
) -> tuple[list[Case], Dataset | None]:
    """The cases a benchmark test module stands for (its ``crmbench_*`` attributes), and
    the conversation dataset they come from (``cache_dir``: the collect cache)."""
    if getattr(module, "crmbench_kind", "conversations") == "golden":
        files = _module_files(module, path, "crmbench_golden", "*.json")
        return golden_cases(files, settings.trials), None
    if settings.dataset:
        paths = _dataset_paths(settings.dataset)
    else:
        paths = _module_files(module, path, "crmbench_dataset", "*.jsonl")
    return conversation_cases(paths, settings.trials, cache_dir)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "crm_case" not in metafunc.fixturenames:
        return
    config = metafunc.config
    state = config.stash[STATE]
    path = Path(str(metafunc.definition.path))
    try:
        cases, dataset = _module_cases(
            metafunc.module, path, state.settings, _collect_cache(config)
        )
    except Exception as exc:
        # A missing, empty or malformed dataset stops collection: its message, once, with
        # no traceback of the plugin (the file and line are in the message).
        raise pytest.Collector.CollectError(str(exc)) from None
    if dataset is not None:
        state.dataset_info = {"files": [str(f) for f in dataset.files], "sha256": dataset.sha256}
        if dataset.defects:  # only imported (Arc) conversations have entries
            config.stash[ARC_DATASET] = True
    streams = stream_marks(config, state, cases)
    params = [
        pytest.param(
            c,
            id=c.test_id,
            marks=[_mark(m) for m in c.markers()]
            + _defect_marks(c, state.settings.arc_defects)
            + streams.get(c.test_id, []),
        )
        for c in cases
    ]
    metafunc.parametrize("crm_case", params, indirect=True)


@functools.cache
def _mark(name: str) -> pytest.MarkDecorator:
    """One decorator per marker name, shared by every item (``pytest.mark.<name>`` makes
    a new one on every access: ~10 per item)."""
    return getattr(pytest.mark, name)  # type: ignore[no-any-return]


def _defect_marks(case: Case, mode: str) -> list[pytest.MarkDecorator]:
    """An imported conversation with a dataset defect is collected but not run: skipped
    (or xfail with ``--crm-arc-defects xfail``) with the defect named."""
    if not case.defects:
        return []
    reason = skip_reason(case.defects)
    if mode == "xfail":
        return [pytest.mark.xfail(reason=reason, run=False)]
    return [pytest.mark.skip(reason=reason)]


def _warm_up_agent(name: str) -> None:
    """Start the agent's warm-up (an SDK's import, seconds of CPU before the first model
    call) with the garbage collector paused: its collections would walk the growing
    heap again and again (~15 % of ``import anthropic``). What it loaded (thousands of
    model classes, alive to the end) is then frozen, out of later collections' sight."""
    enabled = gc.isenabled()

    def settle() -> None:
        gc.freeze()
        if enabled:
            gc.enable()

    gc.disable()
    warm_up(name, then=settle)


@functools.cache  # once per process
def _freeze_at_exit() -> None:
    """At interpreter exit, move what is left out of the garbage collector's sight.
    CPython's last collections walk every object still alive (an SDK's model classes,
    the run's results) only to free memory the process is giving back:
    ~0.4 s per process here, which the controller of an xdist run waits for each
    worker. Every exit handler runs before those collections, whatever the order, and
    handlers that close files or clients still do."""
    atexit.register(gc.freeze)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Move the collected items and datasets (long-lived, many objects) out of the
    garbage collector's sight: every later collection, and pytest's own at exit, skips
    them. Without it a full-suite ``--co`` spends ~0.7 s in ``gc.collect``."""
    if session.config.stash[STATE].dataset_info:
        gc.freeze()


@pytest.hookimpl(trylast=True)  # after -k/-m: a shard is a part of the selection
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    deselect_shard(config, config.stash[STATE], items)  # first: a resume keeps its shard
    deselect_resumed(config, config.stash[STATE], items)
    order_stream(config, config.stash[STATE], items)


# == results ==========================================================================
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    result = item.stash.get(RESULT, None)
    case = item_case(item)
    if case is not None:
        # An item's three reports share one keywords dict (pytest makes one per report,
        # and the terminal keeps every report to the end of the run).
        first = item.stash.get(KEYWORDS, None)
        if first is None:
            item.stash[KEYWORDS] = report.keywords
        elif report.keywords == first:
            report.keywords = first
    if call.when == "setup" and report.failed and case is not None:
        reason = str(call.excinfo.value) if call.excinfo else "setup failed"
        result = case.unjudged_result(reason.splitlines()[0] if reason else "setup failed")
    elif call.when == "setup" and report.skipped and result is None and case is not None:
        reason = str(call.excinfo.value) if call.excinfo else "skipped"
        result = case.unjudged_result(reason, outcome="skipped")
    elif call.when == "setup" and result is not None and report.passed:
        # The slim copy now, for the setup stage's JSON report metadata (which its plugin
        # writes out to check: the slim copy, not the full result); kept for the call.
        item.stash[SLIM] = slim_result(result)
        return
    elif call.when != "call" or result is None:
        return
    if result is None:
        return
    full = result
    if call.when == "call" and report.failed and result["outcome"] == "passed":
        result = {**result, "passed": False, "outcome": "failed"}
    state = item.config.stash[STATE]
    stream = item.stash.get(STREAM, None)
    if stream is not None and "seq" not in result:
        # Where the item finished in its stream (one worker runs a stream, in order): the
        # order of the learning curve.
        state.sequence[stream] = state.sequence.get(stream, 0) + 1
        result = {**result, "stream": stream, "seq": state.sequence[stream]}
    # Plain JSON only: reports travel through xdist. The full result rides on this report
    # to the controller (or this process's session), which writes it to disk and leaves
    # a slim copy in its place; the item keeps the slim copy only.
    report.user_properties.append((USER_PROPERTY, result))  # already plain JSON
    slim = item.stash.get(SLIM, None)
    text = item.stash.get(RESULT_TEXT, None)
    if slim is not None:
        del item.stash[SLIM]
    if text is not None:
        del item.stash[RESULT_TEXT]
    if result is not full or slim is None or not _same_verdict(slim, result):
        slim = slim_result(result)
    item.stash[RESULT] = slim
    if not state.is_worker:
        state.slim_of[item.nodeid] = slim  # the session keeps this very copy (one per item)
        if text is not None and result is full:
            state.text_of[item.nodeid] = (result, text)
    if not state.dataset_sent and state.dataset_info:
        report.user_properties.append((DATASET_PROPERTY, state.dataset_info))
        state.dataset_sent = True


def _same_verdict(slim: ItemResult, result: ItemResult) -> bool:
    """Whether the slim copy made at setup still stands for ``result`` (a test body may
    have changed its verdict)."""
    return all(slim.get(k) == result.get(k) for k in ("passed", "outcome", "error"))


@pytest.hookimpl(optionalhook=True)
def pytest_json_runtest_metadata(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    if call.when not in ("setup", "call"):
        return None
    result = item.stash.get(SLIM, None) if call.when == "setup" else None
    result = result or item.stash.get(RESULT, None)
    if result is None:
        return None
    # The slim copy (the item's, put there by pytest_runtest_makereport, which ran
    # first): the JSON report's record is read back from disk when it is written.
    return {"crmbench": result}


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = config.stash.get(STATE, None)
    if state is None or not _is_benchmark_run(config):
        return None
    s = state.settings
    # An xdist run's server is still starting: its description and notes come at the end.
    server = state.provider or f"{redact_url(s.postgres)}, starting"
    where = s.backend if s.backend == "memory" else f"postgres ({server})"
    lines = [f"crmbench: agent={s.agent} backend={where} trials={s.trials}"]
    if s.concurrency > 1:  # per process: with -n, each worker has as many in flight
        lines[0] += f" concurrency={s.concurrency} per process"
    lines += [f"crmbench: note: {note}" for note in state.provider_notes]
    state.notes_shown = len(state.provider_notes)
    return lines
