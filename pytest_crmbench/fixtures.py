"""Public fixtures of pytest-crmbench, usable in your own test modules.

* ``crm_settings`` — resolved options; ``crm_world`` — the seed world;
* ``crm_store`` — this worker's seeded store (memory, or its own PostgreSQL database);
* ``crm`` — a :class:`~pytest_crmbench.crm.CRM` on the seed world, reset after the test;
* ``crm_agent`` — the agent chosen with ``--agent``; ``crm_runner`` — the runner;
* ``crm_case`` — the parametrized case (conversation or golden), and ``crm_result`` — its
  verdict: run during setup (so infrastructure failures are errors), asserted by
  ``crm_result.check()`` in the test body (so verdicts are failures).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, NoReturn, cast

import pytest

from pytest_crmbench.agents.base import Agent
from pytest_crmbench.agents.judge import make_judge
from pytest_crmbench.agents.loading import AgentLoadError, make_agent
from pytest_crmbench.agents.pricing import price_table
from pytest_crmbench.crm import CRM, FixedClock, RandomIds
from pytest_crmbench.crm.seed import SeedWorld, load_seed_world
from pytest_crmbench.crm.store import Store
from pytest_crmbench.dataset import answer_key
from pytest_crmbench.inflight import IN_FLIGHT
from pytest_crmbench.items import Case
from pytest_crmbench.options import Settings
from pytest_crmbench.runner import DatasetDefect, InfrastructureError, Runner, RunOptions
from pytest_crmbench.runner.arc import ArcRunner
from pytest_crmbench.runner.golden import run_sandbox
from pytest_crmbench.runner.records import ItemResult, read_answer_key
from pytest_crmbench.runner.runner import is_database_error
from pytest_crmbench.state import ARC_DATASET, RESULT, RESULT_TEXT, STATE


@pytest.fixture(scope="session")
def crm_settings(pytestconfig: pytest.Config) -> Settings:
    return pytestconfig.stash[STATE].settings


@pytest.fixture(scope="session")
def crm_world() -> SeedWorld:
    return load_seed_world()


@pytest.fixture(scope="session")
def crm_store(pytestconfig: pytest.Config, crm_world: SeedWorld) -> Store:
    """The seeded store of this process; items reset it, so it is shared by all of them."""
    state = pytestconfig.stash[STATE]
    try:
        return state.open_store(crm_world)
    except Exception as exc:  # reported once per item in one line, not as a traceback
        infrastructure_failure(f"database unavailable ({state.provider or 'PostgreSQL'}): {exc}")


@pytest.fixture
def crm(crm_store: Store, crm_world: SeedWorld) -> Iterator[CRM]:
    """A CRM on the seed world (today = the seed's reference date); changes are undone after."""
    crm_store.reset()
    yield CRM(crm_store, clock=FixedClock(crm_world.reference_date), ids=RandomIds())
    crm_store.reset()


@pytest.fixture(scope="session")
def crm_agent(crm_settings: Settings) -> Agent:
    try:
        with answer_key.agent_code():  # the agent's import and constructor are agent code
            return build_agent(crm_settings)
    except AgentLoadError as exc:
        raise pytest.UsageError(str(exc)) from exc


def agent_settings(settings: Settings) -> dict[str, Any]:
    """The model settings every agent factory may accept (others are ignored)."""
    return {
        "model": settings.agent_model,
        "base_url": settings.agent_base_url,
        "temperature": settings.agent_temperature,
        "max_tokens": settings.agent_max_tokens,
        "timeout": settings.agent_timeout,
        "memory": settings.agent_memory,
        "frozen": settings.agent_frozen,
        "rpm": settings.agent_rpm,
        "tpm": settings.agent_tpm,
        "max_connections": settings.agent_max_connections,
        "cache_dir": settings.agent_cache,
    }


@pytest.fixture(scope="session")
def crm_runner(
    crm_store: Store, crm_world: SeedWorld, crm_settings: Settings, pytestconfig: pytest.Config
) -> Runner | ArcRunner:
    """The runner; conversations imported from the upstream (Arc) format run on an empty
    world with a store of their own, as the upstream ran them (see ``dataset.arc``)."""
    return build_runner(pytestconfig, crm_store, crm_world)


def build_runner(
    config: pytest.Config, store: Store, world: SeedWorld, suffix: str = ""
) -> Runner | ArcRunner:
    """A runner over ``store`` with the run's options (its own judge); the Arc store it
    may open is named with ``suffix`` (one per conversation slot)."""
    state = config.stash[STATE]
    settings = state.settings
    judge = None
    if settings.judge.strip().lower() not in ("", "none"):
        judge = make_judge(
            settings.judge,
            timeout=settings.agent_timeout,
            prices=price_table(settings.agent_prices),
            cache_dir=settings.agent_cache,
        )
    options = RunOptions(
        max_calls_per_turn=settings.max_calls,
        recover=settings.recover,
        strict_actions=settings.strict_actions,
        judge=judge,
        feedback=settings.feedback,
        feedback_every=settings.feedback_every,
    )
    runner = Runner(store, world, options)
    if config.stash.get(ARC_DATASET, False):
        return ArcRunner(runner, lambda w: state.open_store(w, f"{suffix}_arc"))
    return runner


def build_agent(settings: Settings) -> Agent:
    """The agent chosen with ``--agent``, with the run's model settings and prices."""
    agent: Agent = make_agent(settings.agent, **agent_settings(settings))
    if settings.agent_prices and hasattr(agent, "prices"):  # the LLM agents
        agent.prices = price_table(settings.agent_prices)
    return agent


@pytest.fixture
def crm_case(request: pytest.FixtureRequest) -> Case:
    """The case of a parametrized benchmark item (see ``pytest_generate_tests``)."""
    case = getattr(request, "param", None)
    if not isinstance(case, Case):
        raise pytest.UsageError(
            "crm_case is parametrized by the plugin; use it in a module under cases/ or golden/"
        )
    return case


class CaseResult:
    """A finished item's verdict; ``check()`` fails the test with a readable diff."""

    def __init__(self, result: ItemResult) -> None:
        self.result = result

    @property
    def passed(self) -> bool:
        return bool(self.result["passed"])

    def check(self) -> None:
        if not self.passed:
            pytest.fail(format_failure(self.result), pytrace=False)


def format_failure(result: ItemResult) -> str:
    """The first failing turn and what differed, for pytest's failure message."""
    lines: list[str] = []
    if result.get("family") == "golden_sandbox":
        lines.append(f"{result['case_id']}: golden sandbox case failed")
        lines += [f"  - {p}" for p in result.get("problems", [])]
        return "\n".join(lines)
    turns = result.get("turns", [])
    bad = [t for t in turns if not t["passed"]]
    if not bad:  # failed as a whole (e.g. the agent read the answer key)
        first_failure = result.get("first_failure")
        reason = first_failure["reason"] if first_failure else None
        return f"{result['case_id']} failed: {reason or 'failed'}"
    first = bad[0]
    lines.append(
        f"{result['case_id']} failed at turn {first['turn']}/{len(turns)} "
        f"({len(bad)} failing turn(s)): {first['user']!r}"
    )
    for reason in first["reasons"]:
        lines.append(f"  - {reason}")
    lines.append("  agent calls:")
    for c in first["calls"] or []:
        outcome = "ok" if c["ok"] else f"error: {c.get('error')}"
        lines.append(f"    {c['tool']}({_short(c['args'])}) -> {outcome}")
    if not first["calls"]:
        lines.append("    (none)")
    lines.append("  expected calls:")
    for expected in first["expected_calls"]:
        lines.append(f"    {expected['tool']}({_short(expected['args'])})")
    lines.append(f"  reply: {first['reply'][:300]!r}")
    return "\n".join(lines)


def _short(args: Any, limit: int = 160) -> str:
    text = (
        ", ".join(f"{k}={v!r}" for k, v in args.items()) if isinstance(args, dict) else repr(args)
    )
    return text if len(text) <= limit else text[:limit] + "…"


@pytest.fixture
def crm_result(
    request: pytest.FixtureRequest, crm_case: Case, crm_store: Store, crm_settings: Settings
) -> CaseResult:
    """Run the item's case now (setup), so only the verdict is left for the test body."""
    result: ItemResult
    if crm_case.kind == "golden_sandbox" and crm_case.golden is not None:
        try:
            result = run_sandbox(*crm_case.golden, crm_store)
        except Exception as exc:
            if is_database_error(exc):
                infrastructure_failure(f"database error: {exc}")
            raise
    else:
        in_flight = request.config.stash.get(IN_FLIGHT, None)
        future = in_flight.take(request.node) if in_flight is not None else None
        try:
            if in_flight is not None and future is not None:  # run by a slot, maybe done
                result = in_flight.wait(request.node, future)
            else:
                conv = crm_case.conversation  # (rebuilt from its line: once)
                assert conv is not None
                runner = request.getfixturevalue("crm_runner")
                agent = request.getfixturevalue("crm_agent")
                result = runner.run(conv, agent, trial=crm_case.trial)
        except DatasetDefect as exc:
            pytest.skip(f"dataset defect: {exc}")
        except InfrastructureError as exc:
            infrastructure_failure(str(exc))
        result["family"] = crm_case.kind
    result["trial"] = crm_case.trial
    result["test_id"] = crm_case.test_id
    read = answer_key.thread_violations()[request.config.stash[STATE].answer_key_mark :]
    if crm_case.kind != "golden_sandbox" and read:
        # The agent opened a dataset while it was loaded or built (before any item).
        result = read_answer_key(result, read)
    # One plain-JSON copy, shared by the test report and the JSON report's metadata; its
    # text is what the results file gets (written once, not twice).
    text = json.dumps(result, default=str, ensure_ascii=False, separators=(",", ":"))
    result = cast(ItemResult, json.loads(text))
    request.node.stash[RESULT] = result
    request.node.stash[RESULT_TEXT] = text
    return CaseResult(result)


class InfrastructureFailure(pytest.fail.Exception):  # type: ignore[name-defined,misc]
    """Shown as a pytest error: the item could not be judged (not the agent's fault)."""


def infrastructure_failure(reason: str) -> NoReturn:
    """End the item's setup as an error shown in one line (no fixture source, no trace):
    the reason says what failed and, where it can, what to do."""
    first = " ".join(reason.split())  # one line, whatever the cause printed
    raise InfrastructureFailure(first, pytrace=False) from None
