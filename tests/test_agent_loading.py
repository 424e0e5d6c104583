"""Finding agents by name: built-ins, ``module:attr``, entry points, clear errors."""

from __future__ import annotations

import subprocess
import sys
import threading
from importlib.metadata import EntryPoint
from typing import Any

import pytest

from pytest_crmbench.agents import loading
from pytest_crmbench.agents.loading import AgentLoadError, make_agent
from pytest_crmbench.agents.scripted import NoopAgent, ReplayAgent


class Configurable:
    name = "configurable"

    def __init__(self, model: str | None = None, temperature: float = 0.0) -> None:
        self.model = model
        self.temperature = temperature

    def start(self, briefing: Any) -> None: ...

    def respond(self, message: str, tools: Any) -> str:
        return "Done."


class Broken:
    def __init__(self) -> None:
        raise TypeError("bug inside the agent")


INSTANCE = NoopAgent()


@pytest.fixture
def entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    eps = [
        EntryPoint("mine", f"{__name__}:Configurable", loading.ENTRY_POINT_GROUP),
        EntryPoint("quiet", "pytest_crmbench.agents.scripted:NoopAgent", loading.ENTRY_POINT_GROUP),
    ]

    def fake(group: str) -> list[EntryPoint]:
        return [ep for ep in eps if ep.group == group]

    monkeypatch.setattr(loading, "entry_points", fake)


def test_builtins() -> None:
    assert isinstance(make_agent("replay", model="x"), ReplayAgent)
    assert isinstance(make_agent("noop"), NoopAgent)


def test_module_attr_gets_only_the_settings_it_accepts() -> None:
    agent = make_agent(f"{__name__}:Configurable", model="m1", temperature=0.5, timeout=9)
    assert (agent.model, agent.temperature) == ("m1", 0.5)


def test_module_attr_instance_is_used_as_is() -> None:
    assert make_agent(f"{__name__}:INSTANCE") is INSTANCE


def test_entry_point_group(entry_points: None) -> None:
    agent = make_agent("mine", model="m2")
    assert isinstance(agent, Configurable) and agent.model == "m2"
    assert isinstance(make_agent("quiet"), NoopAgent)


def test_unknown_name_lists_what_exists(entry_points: None) -> None:
    with pytest.raises(AgentLoadError, match=r"unknown agent 'nope'.*mine, quiet"):
        make_agent("nope")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("no_such_module_xyz:Agent", "cannot import agent module 'no_such_module_xyz'"),
        (f"{__name__}:Missing", "has no attribute 'Missing'"),
    ],
)
def test_bad_paths(name: str, message: str) -> None:
    with pytest.raises(AgentLoadError, match=message):
        make_agent(name)


def test_errors_inside_the_agent_are_not_swallowed() -> None:
    with pytest.raises(TypeError, match="bug inside the agent"):
        make_agent(f"{__name__}:Broken", model="x")


class WarmsUpBadly:
    warmed = threading.Event()

    @classmethod
    def warm_up(cls) -> None:
        cls.warmed.set()
        raise RuntimeError("the SDK is broken")


class WarmsUp:
    @classmethod
    def warm_up(cls) -> None:
        pass


def test_warm_up_runs_the_agents_hook_in_the_background_and_keeps_its_failure_quiet() -> None:
    after: list[str] = []
    thread = loading.warm_up(f"{__name__}:WarmsUpBadly", then=lambda: after.append("then"))
    assert thread is not None and thread.daemon
    thread.join(10)
    assert WarmsUpBadly.warmed.is_set() and not thread.is_alive()
    assert after == ["then"]  # whether the warm-up worked or not


def test_warm_up_runs_then_after_a_warm_up_that_worked() -> None:
    after: list[str] = []
    thread = loading.warm_up(f"{__name__}:WarmsUp", then=lambda: after.append("then"))
    assert thread is not None
    thread.join(10)
    assert after == ["then"]


@pytest.mark.parametrize("name", ["replay", "no-such-agent"])
def test_warm_up_runs_then_at_once_when_there_is_nothing_to_warm_up(name: str) -> None:
    after: list[str] = []
    assert loading.warm_up(name, then=lambda: after.append("then")) is None
    assert after == ["then"]


@pytest.mark.parametrize("name", ["replay", "noop", "no-such-agent", "nowhere:Agent"])
def test_warm_up_has_nothing_to_do_for_agents_without_the_hook(name: str) -> None:
    assert loading.warm_up(name) is None


@pytest.mark.parametrize(("agent", "sdk"), [("claude", "anthropic"), ("openai", "openai")])
def test_warm_up_imports_the_llm_agents_sdk(agent: str, sdk: str) -> None:
    code = (
        "import sys\n"
        "from pytest_crmbench.agents.loading import warm_up\n"
        f"assert {sdk!r} not in sys.modules\n"
        f"warm_up({agent!r}).join(120)\n"
        f"assert {sdk!r} in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
