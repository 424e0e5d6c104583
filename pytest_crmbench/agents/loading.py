"""Finding an agent by name: built-ins, ``module:attr``, or the ``crmbench.agents`` entry points."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

ENTRY_POINT_GROUP = "crmbench.agents"

BUILTIN: dict[str, str] = {
    "replay": "pytest_crmbench.agents.scripted:ReplayAgent",
    "noop": "pytest_crmbench.agents.scripted:NoopAgent",
    "claude": "pytest_crmbench.agents.claude:ClaudeAgent",
    "openai": "pytest_crmbench.agents.openai_agent:OpenAIAgent",
    "playbook:claude": "pytest_crmbench.agents.playbook:ClaudePlaybook",
    "playbook:openai": "pytest_crmbench.agents.playbook:OpenAIPlaybook",
}


class AgentLoadError(Exception):
    """The named agent cannot be found or built; the message says what to do."""


def _import(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise AgentLoadError(f"cannot import agent module '{module_name}': {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise AgentLoadError(f"module '{module_name}' has no attribute '{attr}'") from exc
    return obj


def resolve_agent_factory(name: str) -> Callable[..., Any]:
    """The class or factory behind an agent name."""
    if name in BUILTIN:
        return _import(BUILTIN[name])  # type: ignore[no-any-return]
    if ":" in name:
        return _import(name)  # type: ignore[no-any-return]
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep.load()  # type: ignore[no-any-return]
    known = sorted(BUILTIN) + sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    raise AgentLoadError(
        f"unknown agent '{name}': use one of {', '.join(known)}, a 'module:attr' path, or "
        f"register an entry point in the '{ENTRY_POINT_GROUP}' group"
    )


def make_agent(name: str, **settings: Any) -> Any:
    """Build an agent, passing each setting only to a factory that accepts it.

    An attribute that is already an agent instance (has ``respond``) is used as is.
    """
    factory = resolve_agent_factory(name)
    if hasattr(factory, "respond") and not isinstance(factory, type):
        return factory
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # some builtins have no signature
        return factory()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return factory(**settings)
    return factory(**{k: v for k, v in settings.items() if k in params})


def warm_up(name: str, then: Callable[[], object] | None = None) -> threading.Thread | None:
    """Let agent ``name`` import what it needs in the background, now.

    An agent class may offer ``warm_up()`` (a class method taking no arguments; the
    built-in LLM agents import their SDK there, which takes seconds). Called as the run
    configures, it overlaps with collection and with starting the database server
    instead of delaying the first conversation. Its failure is ignored: building the
    agent will report the problem properly. ``then`` runs when the warm-up is over,
    whether it worked or not (and at once when there is nothing to warm up).
    """
    try:
        factory = resolve_agent_factory(name)
    except AgentLoadError:
        factory = None
    warm = getattr(factory, "warm_up", None)
    if not callable(warm):
        if then is not None:
            then()
        return None

    def run() -> None:
        try:
            with contextlib.suppress(Exception):
                warm()
        finally:
            if then is not None:
                then()

    thread = threading.Thread(target=run, name="crmbench-agent-warm-up", daemon=True)
    thread.start()
    return thread
