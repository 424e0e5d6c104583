"""Running conversations imported from the upstream (Arc) format on their own world.

The upstream ran every conversation on an empty database plus its own seed, so these
run on a store over :func:`pytest_crmbench.dataset.arc.empty_world`; every other
conversation runs on the seed world.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pytest_crmbench.agents.base import Agent
from pytest_crmbench.crm.seed import SeedWorld
from pytest_crmbench.crm.store import Store
from pytest_crmbench.dataset.arc import empty_world, is_arc
from pytest_crmbench.dataset.model import Conversation
from pytest_crmbench.dataset.refs import RefError
from pytest_crmbench.runner.records import ItemResult
from pytest_crmbench.runner.runner import DatasetDefect, ReferenceRun, Runner, RunOptions


class ArcRunner:
    """A runner front: Arc conversations run on their own store over :func:`empty_world`;
    every other conversation on the base runner (the seed world). The Arc store is
    opened on first use with ``open_store(world)`` and shares the base runner's options.
    """

    def __init__(self, base: Runner, open_store: Callable[[SeedWorld], Store]) -> None:
        self.base = base
        self._open_store = open_store
        self._arc: Runner | None = None

    @property
    def options(self) -> RunOptions:
        return self.base.options

    def runner_for(self, conv: Conversation) -> Runner:
        if not is_arc(conv):
            return self.base
        if self._arc is None:
            world = empty_world()
            self._arc = Runner(self._open_store(world), world, self.base.options)
        return self._arc

    def run(self, conv: Conversation, agent: Agent, *, trial: int | None = None) -> ItemResult:
        try:
            return self.runner_for(conv).run(conv, agent, trial=trial)
        except RefError as exc:  # a defective import forced to run (pytest --runxfail)
            if not is_arc(conv):
                raise
            raise DatasetDefect(f"{conv.id}: {exc}") from exc

    def reference_run(self, conv: Conversation) -> ReferenceRun:
        return self.runner_for(conv).reference_run(conv)

    def __getattr__(self, name: str) -> Any:
        if name == "base":  # not set yet (e.g. while copying): no recursion
            raise AttributeError(name)
        return getattr(self.base, name)
