"""Document uploads on any record, and the file-name rules users break with real files."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from pytest_crmbench.generate import phrasing as P
from pytest_crmbench.generate import pools
from pytest_crmbench.generate.builder import Builder, Call, Skip, short_client, split_deal
from pytest_crmbench.generate.workflows.common import (
    TARGET_KINDS_DOC,
    commit,
    entity,
    file_word,
    pick_target,
    recovers,
    recovery,
    refuse,
    req,
)

BAD_TYPE = "is not supported"
BAD_CHARS = "may only include letters, numbers, dots, underscores, and hyphens"
NO_EXT = "must include an extension"


# == what users say ==================================================================
T_UPLOAD = (
    "attach <file> to <t>",
    "upload <file> to <t>",
    "!I've got the <what> for <t> — it's <file>. Upload it<extras>",
    "add the document <file> to <t>",
    "put <file> on <t>",
    "upload the <what> (<file>) to <it>",
    "store <file> against <t>",
    "attach the <what> <file> to <t>",
)


# == tasks ===========================================================================
def file_stem(b: Builder, kind: str, rid: str) -> tuple[str, str, tuple[str, ...]]:
    """(stem, what the document is in words, allowed extensions for it)."""
    rng = b.rng
    if kind in ("opportunity", "quote"):
        oid = rid if kind == "opportunity" else str(b.get("quote", rid)["opportunity_id"])
        o = b.get("opportunity", oid)
        parts = split_deal(str(o["name"]).replace(" (Clone)", ""))
        head = (parts[0] if parts else str(o["name"])).split()[0]
        words = (parts[1] if parts else "").split()[:2]
        base = [head, *words]
    else:
        cid = rid if kind == "client" else str(b.get(kind, rid)["client_id"])
        base = [short_client(b.client_name(cid)).split()[0]]
    doc_kind, exts = rng.choice(pools.DOC_KINDS)
    if kind == "quote":
        doc_kind, exts = rng.choice((("Quote", ("pdf", "xlsx")), ("Pricing", ("xlsx", "pdf"))))
    if kind == "contract":
        doc_kind, exts = rng.choice(
            (
                ("Signed_Contract", ("pdf",)),
                ("MSA", ("pdf", "docx")),
                ("Renewal_Terms", ("pdf", "docx")),
                ("Order_Form", ("pdf",)),
            )
        )
    parts2 = [file_word(x) for x in base if file_word(x)] + [doc_kind]
    if rng.random() < 0.35:
        parts2.append(rng.choice(("v2", "v3", "final", "2025", "signed", "draft")))
    sep = rng.choice(("_", "_", "-"))
    stem = sep.join(parts2)
    words_ = pools.DOC_KIND_WORDS.get(doc_kind, doc_kind.lower().replace("_", " "))
    if doc_kind == "Quote":
        words_ = "quote"  # its file type is said with the extension (:func:`typed`)
    return stem, words_, exts


FILE_TYPE_WORDS = {"pdf": "PDF", "xlsx": "spreadsheet", "docx": "Word document"}


def typed(what: str, ext: str) -> str:
    """A bare document word with the file type its extension has ("quote PDF" only for
    a .pdf): the user's words must never call a file by another type."""
    if what == "quote" and ext in FILE_TYPE_WORDS:
        return f"quote {FILE_TYPE_WORDS[ext]}"
    return what


def t_upload_document(b: Builder, topic: str, kinds: Sequence[str] = TARGET_KINDS_DOC) -> None:
    rng = b.rng
    ref = pick_target(b, kinds)
    stem, what, exts = file_stem(b, ref.kind, ref.rid)
    ext = rng.choice(exts)
    name = f"{stem}.{ext}"
    what = typed(what, ext)
    if name in b.used_files:
        raise Skip("file used")
    b.used_files.add(name)
    args: dict[str, Any] = {**entity(ref.kind, ref.rid), "file_name": name}
    extras = ""
    if rng.random() < 0.3:
        args["uploaded_by"] = rng.choice(pools.OWNERS)
        extras += rng.choice(
            [
                f", uploaded by {args['uploaded_by']}",
                f" and mark it as uploaded by {args['uploaded_by']}",
            ]
        )
    if rng.random() < 0.12:
        args["file_url"] = f"https://files.example.com/crm/{name}"
        extras += f"; the file lives at {args['file_url']}"
    core = P.say(rng, T_UPLOAD, file=name, t=ref.np, it=ref.it, what=what, extras="") + extras
    commit(
        b,
        topic,
        req(b, core),
        [*ref.calls, Call("upload_document", args)],
        lambda r: [str(r[-1]["file_name"])],
        about=[ref.about],
    )


# == refusals ========================================================================
def _upload_refusal(b: Builder, room: int, topic: str, how: str) -> None:
    rng = b.rng
    ref = pick_target(b, TARGET_KINDS_DOC)
    stem, what, exts = file_stem(b, ref.kind, ref.rid)
    good = f"{stem}.{exts[0]}"
    if how == "type":
        bad = f"{stem}.{rng.choice(pools.BAD_EXTENSIONS)}"
        error = BAD_TYPE
        fixes = ["upload <g> instead", "here's the proper file: <g>", "use <g> then"]
    elif how == "chars":
        words = stem.replace("_", " ").replace("-", " ").split()
        bad = rng.choice(
            [
                " ".join(words) + f".{exts[0]}",
                " ".join(words[:-1]) + f" ({words[-1]}).{exts[0]}",
                "_".join(words[:-1]) + f"#{words[-1]}.{exts[0]}",
                "&".join(words[:2]) + "_" + "_".join(words[2:]) + f".{exts[0]}",
                f"{words[0]}'s_" + "_".join(words[1:]) + f".{exts[0]}",
            ]
        )
        if bad == good or bad.count(".") != 1:
            raise Skip("bad name not bad")
        error = BAD_CHARS
        fixes = ["rename it to <g>", "call the file <g> instead", "use the name <g>"]
    else:
        bad = stem
        error = NO_EXT
        fixes = ["it's a <e> — use <g>", "the file is <g>"]
    # Said now, used on the next turn: the correction is drawn before the refusal.
    fix = P.say(rng, fixes, g=good, e=exts[0].upper())
    args = {**entity(ref.kind, ref.rid), "file_name": bad}
    asks = [
        "upload <f> to <t>",
        "attach <f> to <t>",
        "attach the <w> to <t> — the file is <f>",
        "put the file <f> on <it>",
    ]
    f = bad if how == "no_ext" or rng.random() < 0.5 else f'"{bad}"'
    refuse(b, topic, ref, asks, Call("upload_document", args), error, f=f, t=ref.np, w=what)
    if recovers(b, room) and good not in b.used_files:
        b.used_files.add(good)
        upload = Call("upload_document", {**args, "file_name": good})
        commit(b, topic, recovery(b, fix), [upload], lambda r: [good], about=[ref.about])


def r_bad_file_type(b: Builder, room: int, topic: str) -> None:
    _upload_refusal(b, room, topic, "type")


def r_bad_file_chars(b: Builder, room: int, topic: str) -> None:
    _upload_refusal(b, room, topic, "chars")


def r_no_extension(b: Builder, room: int, topic: str) -> None:
    _upload_refusal(b, room, topic, "no_ext")


t_contract_document = partial(t_upload_document, kinds=("contract",))
t_client_document = partial(t_upload_document, kinds=("client",))
