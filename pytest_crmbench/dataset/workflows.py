"""The eight CRM workflows: one table of their names, pytest markers and entities.

Conversations, golden cases, the Arc importer, the generator and the plugin's markers
all name workflows; they take the names from here so the spellings cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pytest_crmbench.crm.catalog import AGENT_TOOLS


@dataclass(frozen=True)
class WorkflowInfo:
    name: str  # as written in datasets and reports
    marker: str  # the pytest marker of its items
    entity: str  # the CRM entity whose tools belong to it


OPPORTUNITY = "Opportunity Management"
CLIENT = "Client Management"
CONTACT = "Contact Management"
QUOTE = "Quote Management"
CONTRACT = "Contract Management"
COMPANY = "Company / Account Management"
DOCUMENT = "Document Management"
NOTES = "Notes & Collaboration"

TABLE: tuple[WorkflowInfo, ...] = (
    WorkflowInfo(OPPORTUNITY, "opportunity_management", "Opportunity"),
    WorkflowInfo(CLIENT, "client_management", "Client"),
    WorkflowInfo(CONTACT, "contact_management", "Contact"),
    WorkflowInfo(QUOTE, "quote_management", "Quote"),
    WorkflowInfo(CONTRACT, "contract_management", "Contract"),
    WorkflowInfo(COMPANY, "company_management", "Company"),
    WorkflowInfo(DOCUMENT, "document_management", "Document"),
    WorkflowInfo(NOTES, "notes_collaboration", "Note"),
)
WORKFLOWS: tuple[str, ...] = tuple(w.name for w in TABLE)
DEFAULT = OPPORTUNITY
MARKERS: dict[str, str] = {w.name: w.marker for w in TABLE}
BY_ENTITY: dict[str, str] = {w.entity: w.name for w in TABLE}
BY_TOOL: dict[str, str] = {t.name: BY_ENTITY[t.entity.name] for t in AGENT_TOOLS if t.entity}


def marker(workflow: str | None) -> str:
    """The pytest marker of a workflow (unknown names fall back to the default's)."""
    return MARKERS.get(workflow or DEFAULT, MARKERS[DEFAULT])


def of_tool(tool: str) -> str:
    """The workflow a tool belongs to (by its entity); the default for entity-less tools."""
    return BY_TOOL.get(tool, DEFAULT)


def of_tools(tools: Iterable[str]) -> list[str]:
    return [BY_TOOL[t] for t in tools if t in BY_TOOL]
