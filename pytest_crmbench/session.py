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
import random
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from pytest_crmbench.inflight import in_flight_scheduling
from pytest_crmbench.items import Case, item_case
from pytest_crmbench.options import parse_shard
from pytest_crmbench.results import (
    Gate,
    baseline_outcomes,
    evaluate_gate,
    render_summary,
    summarize,
)
from pytest_crmbench.results.packing import pack_report, write_packed_report
from pytest_crmbench.results.summary import slim_result
from pytest_crmbench.runner.records import ItemResult
from pytest_crmbench.state import STREAM, CrmState, reach_postgres

USER_PROPERTY = "crmbench"
DATASET_PROPERTY = "crmbench_dataset"  # sent once per process: files and sha256


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
        self.session: pytest.Session | None = None
        self.started = _now()
        self.consecutive_errors = 0
        self.stopped: str | None = None
        self.default_report = False  # the plugin turned the JSON report on (not the user)
        self.shard = parse_shard(state.settings.shard) if state.settings.shard else None
        self._pending_report: tuple[str, dict[str, Any]] | None = None  # written compactly

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.session = session

    # -- collection (a plain run: the controller of an xdist run collects nothing) ----
    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """A baseline that shares no case with what runs now would compare nothing."""
        baseline = self.state.settings.baseline
        if not baseline:
            return
        cases = {c.case_id for c in map(item_case, items) if c is not None}
        if cases and not cases & set(baseline_outcomes(baseline)):
            raise pytest.UsageError(
                f"--crm-baseline: {baseline} shares no judged case with the {len(cases)} "
                "selected items; compare runs of the same dataset and selection"
            )

    # -- results ----------------------------------------------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        properties = report.user_properties
        for index, (name, value) in enumerate(properties):
            if name == DATASET_PROPERTY and isinstance(value, dict):
                if not self.state.dataset_info:
                    self.state.dataset_info = value  # what an xdist worker collected
            elif name == USER_PROPERTY and isinstance(value, dict):
                # The full result goes to disk; the report pytest keeps to the end of the
                # run (and every other holder) keeps the slim copy.
                slim = self.collect(value, report.nodeid)  # type: ignore[arg-type]
                properties[index] = (USER_PROPERTY, slim)

    def collect(self, result: ItemResult, nodeid: str | None = None) -> ItemResult:
        """Record one finished item: the full result on disk (the results stream, or this
        run's spool for the JSON report), its slim copy in memory; returns the slim copy."""
        state = self.state
        known = state.text_of.pop(nodeid, None) if nodeid is not None else None
        text = known[1] if known is not None and known[0] is result else None
        if state.stream is not None:
            if not state.stream_started:
                state.stream.write_header(self.header())
                state.stream_started = True
            offset = state.stream.write(result, text)
            if nodeid is not None:
                state.offsets[nodeid] = offset
        elif nodeid is not None and self.config.getoption("json_report", False):
            state.offsets[nodeid] = state.spool().write(result, text)
        slim = state.slim_of.pop(nodeid, None) if nodeid is not None else None
        if slim is None or slim.get("case_id") != result.get("case_id"):
            slim = slim_result(result)
        state.results.append(slim)
        self._watch_errors(slim)
        return slim

    def header(self) -> dict[str, Any]:
        """The run's identity and whereabouts, first line of its part of the stream."""
        state = self.state
        return {
            "run_id": state.run_id,
            "started": self.started,
            "identity": state.settings.identity(),
            "dataset_sha256": state.dataset_info.get("sha256"),
            "provider": state.provider,
        }

    def _watch_errors(self, result: ItemResult) -> None:
        """Stop after K consecutive items that could not be judged: an unreachable agent
        or database would otherwise cost every remaining item its timeouts."""
        limit = self.state.settings.stop_after_errors
        self.consecutive_errors = self.consecutive_errors + 1 if result["outcome"] == "error" else 0
        if not limit or self.consecutive_errors < limit or self.stopped:
            return
        if self.session is not None and self.session.testscollected:
            judged = len(self.state.results)
            if judged >= self.session.testscollected:
                return  # that was the last item: nothing left to spare
        self.stopped = (
            f"crmbench stopped the run: {self.consecutive_errors} items in a row could not be "
            f"judged ({result.get('error')}); fix the cause, then run again with "
            "--crm-resume (and --crm-results) to complete the rest"
        )
        dsession = self.config.pluginmanager.get_plugin("dsession")
        if dsession is not None:
            dsession.shouldstop = self.stopped
        elif self.session is not None:
            self.session.shouldstop = self.stopped

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
        state.latest = everything
        if not everything:
            return
        state.summary = summarize(everything, window=state.settings.curve_window)
        s = state.settings
        gate = Gate(s.min_pass_rate, s.baseline, s.max_regressions, s.max_error_rate)
        if gate.active:
            state.gate = evaluate_gate(gate, everything).as_dict()
            if self.stopped:  # an incomplete run passes no gate
                state.gate["passed"] = False
                state.gate["reasons"].append("the run stopped before every item was judged")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if session.exitstatus == pytest.ExitCode.USAGE_ERROR:
            return  # e.g. no PostgreSQL: nothing ran, and pytest shows why
        self.finish()
        self.write_report()  # pytest-json-report built it in its (tryfirst) sessionfinish
        resumable = (
            pytest.ExitCode.OK,
            pytest.ExitCode.TESTS_FAILED,
            pytest.ExitCode.NO_TESTS_COLLECTED,
        )
        if self.state.previous and self.state.summary and session.exitstatus in resumable:
            # A resumed run ends as the uninterrupted run would have: judged on all items.
            bad = any(r["outcome"] in ("failed", "error") for r in self.state.latest)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED if bad else pytest.ExitCode.OK
        if self.stopped:
            return  # interrupted: neither a resume nor the gate may call it a pass
        if self.state.gate is not None:  # the gate decides the exit status
            session.exitstatus = (
                pytest.ExitCode.OK if self.state.gate["passed"] else pytest.ExitCode.TESTS_FAILED
            )

    @pytest.hookimpl(optionalhook=True)
    def pytest_json_modifyreport(self, json_report: dict[str, Any]) -> None:
        self.finish()
        state = self.state
        if state.summary is None:
            if self.default_report:
                # Nothing was judged: keep the previous report (a CI baseline) as it is.
                self.config.option.json_report_file = None
            return
        for test in json_report.get("tests") or []:
            if "metadata" not in test and str(test.get("nodeid")) in state.offsets:
                # An xdist worker's item: pytest-json-report asks for metadata where the
                # item ran and never sends it home; its record is on disk, read below.
                test["metadata"] = {"crmbench": {}}
        s = state.settings
        if state.gate is not None:  # the gate decides the exit status (pytest_sessionfinish)
            json_report["exitcode"] = int(
                pytest.ExitCode.OK if state.gate["passed"] else pytest.ExitCode.TESTS_FAILED
            )
        json_report["crmbench"] = {
            "run_id": state.run_id,
            "label": s.label,
            "started": self.started,
            "finished": _now(),
            "stopped": self.stopped,
            "summary": state.summary,
            "gate": state.gate,
            "settings": s.public(),
            "agent": self.agent_info(),
            "dataset": state.dataset_info,
            "backend": s.backend,
            "postgres_provider": state.provider if s.backend == "postgres" else None,
            "postgres_notes": state.provider_notes if s.backend == "postgres" else [],
            "resumed_items": len(state.previous),
            "oracle": bool(state.summary.get("oracle")),
            "feedback": s.feedback,
            "shard": f"{self.shard[0]}/{self.shard[1]}" if self.shard else None,
            "learning": self.learning_info(),
            "versions": _versions(),
        }
        path = self.config.getoption("json_report_file", None)
        if path and self.config.getoption("json_report_indent", None) is None:
            # Written by :meth:`write_report` without pytest-json-report's spaces and
            # \u escapes (a tenth of the file), each item's record read from disk.
            self._pending_report = (str(path), json_report)
            self.config.option.json_report_file = None
            return
        for test in json_report.get("tests") or []:  # pytest-json-report writes it: in full
            full = self.full_record(test)
            if full is not None:
                test["metadata"]["crmbench"] = full
        pack_report(json_report)

    def full_record(self, test: dict[str, Any]) -> dict[str, Any] | None:
        """The full item record of a JSON report's test entry (which holds the slim copy),
        read back from where :meth:`collect` wrote it; None when there is none."""
        meta = (test.get("metadata") or {}).get("crmbench")
        offset = self.state.offsets.get(str(test.get("nodeid")))
        source = self.state.stream or self.state.spool_stream
        if not isinstance(meta, dict) or offset is None or source is None:
            return None
        return source.read_at(offset)

    def write_report(self) -> None:
        """Write the JSON report held back in :meth:`pytest_json_modifyreport`, compactly."""
        if self._pending_report is None:
            return
        path, report = self._pending_report
        self._pending_report = None
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_packed_report(path, report, self.full_record)
        self.config.option.json_report_file = path  # as it was (for the terminal summary)

    def learning_info(self) -> dict[str, Any] | None:
        """How an ordered run was run: the order, the number of streams, when feedback
        came, and the learning agent's memory (None for an unordered run)."""
        s = self.state.settings
        if not s.ordered:
            return None
        curve = (self.state.summary or {}).get("learning_curve") or {}
        return {
            "order": "dataset" if s.stream_seed is None else f"seed {s.stream_seed}",
            "streams": curve.get("streams", 0),
            "feedback": s.feedback,
            "feedback_every": s.feedback_every,
            "window": s.curve_window,
            "agent_memory": s.agent_memory,
            "agent_frozen": s.agent_frozen,
        }

    def agent_info(self) -> dict[str, Any]:
        """The agent as run: its name, and the model, provider and API host it reported
        (the setting as given when it reported none)."""
        s = self.state.settings
        reported = next((r["model"] for r in self.state.latest if r.get("model")), None)
        info: dict[str, Any] = {"name": s.agent, "model": s.agent_model, "provider": None}
        info["host"] = urlsplit(s.agent_base_url).hostname if s.agent_base_url else None
        if reported:
            info.update(
                model=reported.get("name"),
                provider=reported.get("provider"),
                host=reported.get("host"),
            )
        return info

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        self.finish()
        state = self.state
        if state.summary is None:
            return
        s = state.settings
        where = s.backend if s.backend == "memory" else f"postgres: {state.provider}"
        info = self.agent_info()
        agent = s.agent + (f" ({info['provider'] or ''} {info['model']})" if info["model"] else "")
        for line in render_summary(state.summary, agent=agent, store=where):
            terminalreporter.write_line(line)
        for note in state.provider_notes[state.notes_shown :]:  # the server came up late
            terminalreporter.write_line(f"  note: {note}")
        report = self.config.getoption("json_report_file", None)
        if report and self.config.getoption("json_report", False):
            terminalreporter.write_line(f"  report: {report}")
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


class WorkerResults:
    """An xdist worker's hook: once a report has gone home (xdist serialises it in its
    own, earlier, ``pytest_runtest_logreport``), the worker keeps the slim copy only."""

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        properties = report.user_properties
        for index, (name, value) in enumerate(properties):
            if name == USER_PROPERTY and isinstance(value, dict):
                properties[index] = (USER_PROPERTY, slim_result(value))  # type: ignore[arg-type]


def deselect_resumed(config: pytest.Config, state: CrmState, items: list[pytest.Item]) -> None:
    """``--crm-resume``: judged items are done; errored or skipped ones run again. (Runs
    wherever items are collected: a plain run, or each xdist worker.)"""
    if not state.previous:
        return
    before = (state.resumed_header or {}).get("dataset_sha256")
    now = state.dataset_info.get("sha256")
    if before and now and before != now:
        raise pytest.UsageError(
            f"--crm-resume: {state.settings.results} was written for another dataset "
            f"(sha256 {before[:12]}… → {now[:12]}…); resume with the same dataset, or "
            "write to a new --crm-results file"
        )
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


def item_work(item: pytest.Item) -> int:
    """Expected work of an item, for balancing shards: turns plus reference calls."""
    case = item_case(item)
    return case.work() if case is not None else 1


def shard_of(works: list[tuple[str, int]], shards: int) -> dict[str, int]:
    """Assign items (id, work) to shards 1..N: heaviest first to the least loaded shard
    (ties to the lowest shard), so shards take about equal time; deterministic for the
    same selection, whatever order it was collected in."""
    load = [0] * shards
    out: dict[str, int] = {}
    for name, work in sorted(works, key=lambda w: (-w[1], w[0])):
        index = min(range(shards), key=lambda i: (load[i], i))
        load[index] += work
        out[name] = index + 1
    return out


def deselect_shard(config: pytest.Config, state: CrmState, items: list[pytest.Item]) -> None:
    """``--crm-shard K/N``: keep this shard's part of the selection, deselect the rest.
    (Runs wherever items are collected, after the resume deselection.)"""
    shard = parse_shard(state.settings.shard) if state.settings.shard else None
    if shard is None:
        return
    k, n = shard
    owner = shard_of([(item.nodeid, item_work(item)) for item in items], n)
    keep = [item for item in items if owner[item.nodeid] == k]
    skip = [item for item in items if owner[item.nodeid] != k]
    if skip:
        config.hook.pytest_deselected(items=skip)
        items[:] = keep


def check_stream_order(config: pytest.Config, ordered: bool) -> None:
    """An ordered run (feedback, stream seed or window) must not be reordered behind the
    user's back: pytest-randomly's shuffling and xdist's item-by-item distribution are
    usage errors, not a silent reorder."""
    if not ordered:
        return
    if config.pluginmanager.hasplugin("randomly") and getattr(
        config.option, "randomly_reorganize", True
    ):
        raise pytest.UsageError(
            "--crm-feedback runs the items as an ordered stream, and pytest-randomly would "
            "shuffle them: add -p no:randomly (or -p randomly --randomly-dont-reorganize)"
        )
    dist = getattr(config.option, "dist", "no")
    if getattr(config.option, "numprocesses", None) and dist != "loadgroup":
        raise pytest.UsageError(
            "--crm-feedback with -n runs one ordered stream per worker: add --dist loadgroup "
            f"(--dist {dist} would hand items out one by one, out of order)"
        )


def stream_marks(
    config: pytest.Config, state: CrmState, cases: list[Case]
) -> dict[str, list[pytest.MarkDecorator]]:
    """At parametrization (before any hook reads marks): each agent case's place in the
    stated order (dataset order, or shuffled with ``--crm-stream-seed``), dealt
    round-robin into one stream per worker; each stream is an ``xdist_group``, so
    ``--dist loadgroup`` runs it on one worker, in this order."""
    settings = state.settings
    if not settings.ordered:
        return {}
    workerinput = getattr(config, "workerinput", None) or {}
    streams = max(1, int(workerinput.get("workercount", 1)))
    out: dict[str, list[pytest.MarkDecorator]] = {}
    for test_id, (position, group) in stream_groups(cases, settings.stream_seed, streams).items():
        state.stream_position[test_id] = position
        out[test_id] = [pytest.mark.xdist_group(group)]
    return out


def stream_groups(cases: list[Case], seed: int | None, streams: int) -> dict[str, tuple[int, str]]:
    """test id → (place in the stated order, stream): the agent cases in dataset order (or
    shuffled with ``seed``), dealt round-robin into ``streams`` streams."""
    agent = [c for c in cases if c.kind != "golden_sandbox"]
    if seed is not None:
        random.Random(seed).shuffle(agent)
    return {
        case.test_id: (position, f"crmbench-stream-{position % streams}")
        for position, case in enumerate(agent)
    }


def order_stream(config: pytest.Config, state: CrmState, items: list[pytest.Item]) -> None:
    """Run the agent items in their stream order (see :func:`stream_marks`), after the
    rest; each remembers its stream, for the sequence number of its result."""
    if not state.settings.ordered:
        return
    stream: list[tuple[int, str, pytest.Item]] = []
    rest: list[pytest.Item] = []
    for item in items:
        case = item_case(item)
        position = state.stream_position.get(case.test_id) if case is not None else None
        if position is None:
            rest.append(item)
            continue
        mark = item.get_closest_marker("xdist_group")
        item.stash[STREAM] = str(mark.args[0]) if mark is not None else "crmbench-stream-0"
        stream.append((position, item.nodeid, item))
    items[:] = rest + [item for _, _, item in sorted(stream, key=lambda x: (x[0], x[1]))]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class XdistController:
    """xdist-only hooks, registered only when xdist runs (as pytest-randomly does)."""

    def __init__(self, session: CrmSession, cases_of_module: Any) -> None:
        self.session = session
        self.state = session.state
        self._cases_of_module = cases_of_module  # (module, path) -> list[Case]
        self._index: dict[str, dict[str, Case]] = {}  # module path -> test id -> case
        self._groups: dict[str, dict[str, tuple[int, str]]] = {}  # path -> streams
        self._judged: set[str] = set()  # items with a result whose protocol goes on

    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """An ordered run: each stream goes whole to one worker, in its order. (xdist's own
        ``loadgroup`` cannot do it under pytest 9: its workers write the group into
        ``item._nodeid``, which no longer changes the node id, so no group reaches the
        scheduler.)

        The run's PostgreSQL server, started in the background while the workers boot, is
        waited for here: no item reaches a worker before it is there to hand over.
        """
        if self.state.handoff is not None:
            reach_postgres(self.state)
        concurrency = self.state.settings.concurrency
        if concurrency > 1:
            return in_flight_scheduling(config, log, concurrency, self.work_of)
        if not self.state.settings.ordered:
            return None
        from xdist.scheduler import LoadScopeScheduling  # lazy: only when xdist schedules

        stream_of = self.stream_of

        class StreamScheduling(LoadScopeScheduling):  # type: ignore[misc]
            def _split_scope(self, nodeid: str) -> str:
                return stream_of(nodeid) or nodeid

        return StreamScheduling(config, log)

    def stream_of(self, nodeid: str) -> str | None:
        """The stream of an item, from the same cases and rule the workers used."""
        path = nodeid.partition("::")[0]
        case = self.case_of(nodeid)
        if case is None:
            return None
        if path not in self._groups:
            cases = list(self._index[path].values())
            streams = max(1, int(getattr(self.session.config.option, "numprocesses", 1) or 1))
            self._groups[path] = stream_groups(cases, self.state.settings.stream_seed, streams)
        found = self._groups[path].get(case.test_id)
        return found[1] if found else None

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["crmbench_run_id"] = self.state.run_id
        if self.state.handoff is not None:  # the server (maybe still starting)
            node.workerinput["crmbench_server_handoff"] = str(self.state.handoff)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if any(name == USER_PROPERTY for name, _ in report.user_properties):
            self._judged.add(report.nodeid)
            return
        if str(report.when) != "???" or not report.failed:
            return
        if report.nodeid in self._judged:
            return  # it died after sending the item's result (in teardown): it stands
        # The worker died running this item, so it sent no result: record an error.
        case = self.case_of(report.nodeid)
        if case is not None:
            self.session.collect(case.unjudged_result("worker crashed while running this item"))

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self._judged.discard(nodeid)

    def work_of(self, nodeid: str) -> int:
        """Expected work of an item (turns plus reference calls; 0 when not a case)."""
        case = self.case_of(nodeid)
        return case.work() if case is not None else 0

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
