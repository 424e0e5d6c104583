"""The CRM domain: entities, rules and tools over a memory or PostgreSQL store.

Knows nothing of pytest or agents. Typical use::

    from pytest_crmbench.crm import CRM, MemoryStore, CrmError
    crm = CRM(MemoryStore())
    client = crm.create_new_client(name="Acme", email="ops@acme.test", status="Active")
"""

from pytest_crmbench.crm.catalog import AGENT_TOOLS, BY_TOOL, TOOLS, ToolSpec, agent_catalog
from pytest_crmbench.crm.clock import DeterministicIds, FixedClock, RandomIds, SystemClock
from pytest_crmbench.crm.errors import CrmError
from pytest_crmbench.crm.memory import MemoryStore
from pytest_crmbench.crm.seed import SeedWorld, load_seed_world
from pytest_crmbench.crm.service import CRM
from pytest_crmbench.crm.store import Cond, Store

__all__ = [
    "AGENT_TOOLS",
    "BY_TOOL",
    "CRM",
    "TOOLS",
    "Cond",
    "CrmError",
    "DeterministicIds",
    "FixedClock",
    "MemoryStore",
    "RandomIds",
    "SeedWorld",
    "Store",
    "SystemClock",
    "ToolSpec",
    "agent_catalog",
    "load_seed_world",
]
