"""Notes on any record: the collaboration workflow, and where many chains end."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from pytest_crmbench.generate import phrasing as P
from pytest_crmbench.generate import pools
from pytest_crmbench.generate.builder import Builder, Call
from pytest_crmbench.generate.workflows.common import (
    TARGET_KINDS_NOTE,
    commit,
    entity,
    note_text,
    pick_target,
    req,
)

# == what users say ==================================================================
T_NOTE = (
    "attach a note to <t>: <qc>",
    "log a note on <it> saying <qc>",
    "!note on <t>: <qc>",
    "put a note on <t> — <qc>",
    "record this on <t>: <qc>",
    "add this note to <t>. <qc>",
    "leave a note on <t> for the team: <qc>",
    "jot this down on <t>: <qc>",
)


# == tasks ===========================================================================
def t_add_note(b: Builder, topic: str, kinds: Sequence[str] = TARGET_KINDS_NOTE) -> None:
    rng = b.rng
    ref = pick_target(b, kinds)
    content = note_text(b)
    args: dict[str, Any] = {**entity(ref.kind, ref.rid), "content": content}
    core = P.say(rng, T_NOTE, t=ref.np, it=ref.it, qc=P.quote_text(rng, content))
    if rng.random() < 0.25:
        args["created_by"] = rng.choice(pools.OWNERS)
        core += rng.choice([f" (from {args['created_by']})", f". Sign it as {args['created_by']}"])
    commit(b, topic, req(b, core), [*ref.calls, Call("add_note", args)], about=[ref.about])


t_contract_note = partial(t_add_note, kinds=("contract",))
t_contact_note = partial(t_add_note, kinds=("contact",))
t_client_note = partial(t_add_note, kinds=("client",))
