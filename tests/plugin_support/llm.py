"""What the LLM-agent tests share: a clean process state, both SDK flavours, one call.

Import the fixtures into a test module (``from plugin_support.llm import flavor_fixture,
isolated_llm``) to use them; each module keeps its own fake key, so a leak names it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pytest_crmbench.agents.claude import ClaudeAgent
from pytest_crmbench.agents.endpoints import close_shared_clients
from pytest_crmbench.agents.llm import LLMAgent
from pytest_crmbench.agents.openai_agent import OpenAIAgent
from pytest_crmbench.fakemodel import FakeModelServer

KEY_VARS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY", "OPENAI_ADMIN_KEY")


@pytest.fixture(autouse=True)
def isolated_llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No key or base URL from the environment; shared clients, pauses, limiters and
    cache counts start over (and are closed after)."""
    for var in (*KEY_VARS, "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    close_shared_clients()
    yield
    close_shared_clients()


@pytest.fixture(params=["claude", "openai"], name="flavor")
def flavor_fixture(request: pytest.FixtureRequest) -> str:
    """Both SDKs: ``claude`` (Anthropic) and ``openai``."""
    return str(request.param)


def make_llm_agent(flavor: str, server: FakeModelServer, key: str, **kwargs: Any) -> LLMAgent:
    """A claude or openai agent on the fake server (10 s timeout unless given)."""
    kwargs.setdefault("timeout", 10.0)
    kwargs.setdefault("api_key", key)
    if flavor == "claude":
        return ClaudeAgent(base_url=server.anthropic_base_url, **kwargs)
    return OpenAIAgent(base_url=server.openai_base_url, **kwargs)


def complete(agent: LLMAgent, text: str = "Hello") -> Any:
    """One model call of ``agent``'s backend with a one-message history."""
    history: list[dict[str, Any]] = []
    agent.backend.add_user(history, text)
    return agent.backend.complete("You are a test.", history, None, "auto")
