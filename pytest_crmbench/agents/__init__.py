"""Agents: the protocol, the scripted agents and loading by name. Knows nothing of pytest."""

from pytest_crmbench.agents.base import Agent, AgentUnavailable, Briefing, ToolHandle, ToolResult
from pytest_crmbench.agents.loading import AgentLoadError, make_agent

__all__ = [
    "Agent",
    "AgentLoadError",
    "AgentUnavailable",
    "Briefing",
    "ToolHandle",
    "ToolResult",
    "make_agent",
]
