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

from collections.abc import Iterator
from typing import Any

import pytest

from pytest_crmbench.cases_loader import Case
from pytest_crmbench.options import Settings
from pytest_crmbench.state import RESULT, STATE


@pytest.fixture(scope="session")
def crm_settings(pytestconfig: pytest.Config) -> Settings:
    return pytestconfig.stash[STATE].settings


@pytest.fixture(scope="session")
def crm_world() -> Any:
    from pytest_crmbench.crm.seed import load_seed_world

    return load_seed_world()


@pytest.fixture(scope="session")
def crm_store(pytestconfig: pytest.Config, crm_world: Any) -> Any:
    """The seeded store of this process; items reset it, so it is shared by all of them."""
    from pytest_crmbench.backends import open_memory_store, open_postgres_store

    state = pytestconfig.stash[STATE]
    store: Any
    if state.settings.backend == "memory":
        store = open_memory_store(crm_world)
    else:
        from pytest_crmbench.postgres import create_database

        admin = state.ensure_server()
        name = f"crmbench_{state.run_id}_{state.worker_id}".lower()
        url = create_database(admin, name)
        state.stores_db.append(name)
        store = open_postgres_store(url, crm_world)
    state.stores.append(store)
    return store


@pytest.fixture
def crm(crm_store: Any, crm_world: Any) -> Iterator[Any]:
    """A CRM on the seed world (today = the seed's reference date); changes are undone after."""
    from pytest_crmbench.crm import CRM, FixedClock, RandomIds

    crm_store.reset()
    yield CRM(crm_store, clock=FixedClock(crm_world.reference_date), ids=RandomIds())
    crm_store.reset()


@pytest.fixture(scope="session")
def crm_agent(crm_settings: Settings) -> Any:
    from pytest_crmbench.agents.loading import AgentLoadError, make_agent

    try:
        return make_agent(
            crm_settings.agent,
            model=crm_settings.agent_model,
            base_url=crm_settings.agent_base_url,
            temperature=crm_settings.agent_temperature,
            max_tokens=crm_settings.agent_max_tokens,
            timeout=crm_settings.agent_timeout,
        )
    except AgentLoadError as exc:
        raise pytest.UsageError(str(exc)) from exc


@pytest.fixture(scope="session")
def crm_runner(crm_store: Any, crm_world: Any, crm_settings: Settings) -> Any:
    from pytest_crmbench.runner import Runner, RunOptions

    options = RunOptions(
        max_calls_per_turn=crm_settings.max_calls,
        recover=crm_settings.recover,
        strict_actions=crm_settings.strict_actions,
    )
    return Runner(crm_store, crm_world, options)


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

    def __init__(self, result: dict[str, Any]) -> None:
        self.result = result

    @property
    def passed(self) -> bool:
        return bool(self.result["passed"])

    def check(self) -> None:
        if not self.passed:
            pytest.fail(format_failure(self.result), pytrace=False)


def format_failure(result: dict[str, Any]) -> str:
    """The first failing turn and what differed, for pytest's failure message."""
    lines: list[str] = []
    if result.get("family") == "golden_sandbox":
        lines.append(f"{result['case_id']}: golden sandbox case failed")
        lines += [f"  - {p}" for p in result.get("problems", [])]
        return "\n".join(lines)
    turns = result.get("turns", [])
    bad = [t for t in turns if not t["passed"]]
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
    for c in first["expected_calls"]:
        lines.append(f"    {c['tool']}({_short(c['args'])})")
    lines.append(f"  reply: {first['reply'][:300]!r}")
    return "\n".join(lines)


def _short(args: Any, limit: int = 160) -> str:
    text = (
        ", ".join(f"{k}={v!r}" for k, v in args.items()) if isinstance(args, dict) else repr(args)
    )
    return text if len(text) <= limit else text[:limit] + "…"


@pytest.fixture
def crm_result(
    request: pytest.FixtureRequest, crm_case: Case, crm_store: Any, crm_settings: Settings
) -> CaseResult:
    """Run the item's case now (setup), so only the verdict is left for the test body."""
    from pytest_crmbench.runner import DatasetDefect, InfrastructureError
    from pytest_crmbench.runner.golden import run_sandbox

    if crm_case.kind == "golden_sandbox":
        gf, gc = crm_case.data
        result = run_sandbox(gf, gc, crm_store)
    else:
        runner = request.getfixturevalue("crm_runner")
        agent = request.getfixturevalue("crm_agent")
        try:
            result = runner.run(crm_case.conversation, agent, trial=crm_case.trial)
        except DatasetDefect as exc:
            pytest.skip(f"dataset defect: {exc}")
        except InfrastructureError as exc:
            raise InfrastructureFailure(str(exc)) from None
        result["family"] = crm_case.kind
    result["trial"] = crm_case.trial
    result["test_id"] = crm_case.test_id
    request.node.stash[RESULT] = result
    return CaseResult(result)


class InfrastructureFailure(Exception):
    """Shown as a pytest error: the item could not be judged (not the agent's fault)."""
