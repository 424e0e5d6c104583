"""The dataset format: valid files load and round-trip; malformed ones fail located.

Target R4: every kind of malformed input must name the file, the line and the problem.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_crmbench.dataset import (
    Conversation,
    DatasetError,
    RefError,
    detect_format,
    dump_conversation,
    find_refs,
    load_dataset,
    resolve,
)

CLIENT_ID = "0b7e4c1a-2f7d-4a3e-9d1c-5e6f7a8b9c0d"


def _turn(user: str, *calls: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"user": user, "expected_calls": list(calls), **extra}


def _call(tool: str, **args: Any) -> dict[str, Any]:
    return {"tool": tool, "args": args}


def _conv(conv_id: str = "CONV-0001", **fields: Any) -> dict[str, Any]:
    conv: dict[str, Any] = {
        "format": "crmbench/1",
        "id": conv_id,
        "workflow": "Client Management",
        "complexity": "simple",
        "reference_date": "2025-10-01",
        "turns": [_turn("Find the client Acme.", _call("client_search", name="Acme"))],
    }
    conv.update(fields)
    return conv


def _medium() -> dict[str, Any]:
    """Four turns with seed records, references of both forms and a refused request."""
    return _conv(
        "CONV-0002",
        workflow="Opportunity Management",
        complexity="medium",
        title="new-deal-for-seeded-client",
        tags=["refs", "failure"],
        seed={
            "clients": [
                {
                    "client_id": CLIENT_ID,
                    "name": "Zephyr Labs",
                    "email": "ops@zephyr.test",
                    "status": "Active",
                    "created_date": "2025-01-02T10:00:00+00:00",
                }
            ]
        },
        turns=[
            _turn("Look up Zephyr Labs.", _call("client_search", name="Zephyr")),
            _turn(
                "Open a $85K deal for them called Zephyr Expansion, Prospecting stage.",
                _call(
                    "create_new_opportunity",
                    name="Zephyr Expansion",
                    client_id="{{turn_1.client_id}}",
                    stage="Prospecting",
                    amount=85000,
                ),
                reply={"must_mention": ["Zephyr Expansion", "$85,000"]},
            ),
            _turn(
                "Set its probability to 150%.",
                _call(
                    "modify_opportunity",
                    opportunity_id="{{turn_2.calls[0].result.opportunity_id}}",
                    updates={"probability": 150},
                ),
                expect="failure",
                error_contains="Probability",
            ),
            _turn(
                "Quote it at the full amount and note the quote on the client.",
                _call("create_quote", opportunity_id="{{turn_2.opportunity_id}}", amount=85000),
                _call(
                    "add_note",
                    entity_type="Client",
                    entity_id="{{turn_1.client_id}}",
                    content="Quote for {{turn_2.name}} sent",
                ),
                reply={"must_mention": ["85,000"], "rubric": "Confirms both actions."},
            ),
        ],
    )


def _complex() -> dict[str, Any]:
    turns = [_turn("Which quote prefixes are in use?", _call("quote_prefixes"))]
    turns += [_turn(f"Show opportunities owned by rep {i}.") for i in range(2, 8)]
    turns[3]["expected_calls"] = [_call("opportunity_search", owner="Maya Patel")]
    turns[6]["expected_calls"] = [
        _call("view_opportunity_details", opportunity_id="{{turn_4.opportunity_id}}")
    ]
    return _conv("CONV-0003", workflow="Quote Management", complexity="complex", turns=turns)


def _valid_lines() -> list[dict[str, Any]]:
    return [_conv(), _medium(), _complex()]


def _write(path: Path, lines: list[Any]) -> Path:
    text = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    path.write_text(text, encoding="utf-8")
    return path


# -- valid datasets ----------------------------------------------------------------------


def test_valid_dataset_loads(tmp_path: Path) -> None:
    path = _write(tmp_path / "cases.jsonl", _valid_lines())
    ds = load_dataset(path)
    assert [c.id for c in ds.conversations] == ["CONV-0001", "CONV-0002", "CONV-0003"]
    assert [c.complexity for c in ds.conversations] == ["simple", "medium", "complex"]
    assert ds.files == (path,)
    assert ds.locations["CONV-0003"] == (path, 3)
    medium = ds.by_id["CONV-0002"]
    assert medium.has_failure_turn and not ds.by_id["CONV-0001"].has_failure_turn
    assert medium.n_turns == 4
    assert medium.tools == (
        "add_note",
        "client_search",
        "create_new_opportunity",
        "create_quote",
        "modify_opportunity",
    )
    assert medium.turns[1].reply.must_mention == ["Zephyr Expansion", "$85,000"]
    assert medium.seed["clients"][0]["name"] == "Zephyr Labs"
    assert str(medium.reference_date) == "2025-10-01"
    assert ds.by_id["CONV-0003"].turns[6].expected_calls[0].tool == "view_opportunity_details"


def test_blank_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    lines: list[Any] = ["", _conv(), "   ", "\t", _medium()]
    ds = load_dataset(_write(tmp_path / "a.jsonl", lines))
    assert [c.id for c in ds.conversations] == ["CONV-0001", "CONV-0002"]
    assert ds.locations["CONV-0002"][1] == 5


def test_directory_loads_jsonl_files_by_name(tmp_path: Path) -> None:
    _write(tmp_path / "b.jsonl", [_medium()])
    _write(tmp_path / "a.jsonl", [_conv()])
    (tmp_path / "notes.txt").write_text("not a dataset")
    ds = load_dataset(tmp_path)
    assert [p.name for p in ds.files] == ["a.jsonl", "b.jsonl"]
    assert [c.id for c in ds.conversations] == ["CONV-0001", "CONV-0002"]
    assert ds.sha256 == load_dataset([tmp_path / "a.jsonl", tmp_path / "b.jsonl"]).sha256


def test_dump_round_trips(tmp_path: Path) -> None:
    ds = load_dataset(_write(tmp_path / "a.jsonl", _valid_lines()))
    dumped = [dump_conversation(c) for c in ds.conversations]
    assert dumped[0].startswith('{"format":"crmbench/1","id":"CONV-0001","workflow":')
    assert '"expect"' not in dumped[0]  # defaults are left out
    again = load_dataset(_write(tmp_path / "b.jsonl", dumped))
    assert again.conversations == ds.conversations
    assert [dump_conversation(c) for c in again.conversations] == dumped
    assert json.loads(dumped[0])["format"] == "crmbench/1"
    assert list(json.loads(dumped[1])) == [
        "format",
        "id",
        "workflow",
        "complexity",
        "reference_date",
        "seed",
        "turns",
        "tags",
        "title",
    ]


def test_dump_keeps_unicode() -> None:
    conv = Conversation.model_validate(
        _conv(turns=[_turn("Find Müller & Søn GmbH – thanks!", _call("client_search"))])
    )
    assert "Müller & Søn GmbH – thanks!" in dump_conversation(conv)


def test_hash_is_stable_and_changes_with_a_byte(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.jsonl", _valid_lines())
    first = load_dataset(path).sha256
    assert load_dataset(path).sha256 == first
    path.write_bytes(path.read_bytes().replace(b"Find the client Acme.", b"Find the client Acme!"))
    assert load_dataset(path).sha256 != first


def test_detect_format() -> None:
    assert detect_format(_conv()) == "crmbench/1"
    assert detect_format({"conversation_id": "x", "turns": [{"user_utterance": "hi"}]}) == "arc"
    assert detect_format({"format": "crmbench/2"}) is None


# -- malformed datasets ------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], Any]


def _mutate(fn: Mutation) -> list[Any]:
    """A valid first line, then the base conversation changed by ``fn`` on line 2."""
    conv = _conv("CONV-0012")
    fn(conv)
    return [_conv(), conv]


def _set_turns(n: int, complexity: str) -> Mutation:
    def fn(c: dict[str, Any]) -> None:
        c["complexity"] = complexity
        c["turns"] = [_turn(f"Find client {i}.", _call("client_search")) for i in range(n)]

    return fn


def _two_turns(second_args: dict[str, Any], first: dict[str, Any] | None = None) -> Mutation:
    def fn(c: dict[str, Any]) -> None:
        c["turns"] = [
            first or _turn("Find Acme.", _call("client_search", name="Acme")),
            _turn("Show its contacts.", _call("contact_search", **second_args)),
        ]

    return fn


def _turn0(**changes: Any) -> Mutation:
    def fn(c: dict[str, Any]) -> None:
        c["turns"][0].update(changes)

    return fn


def _call0(**changes: Any) -> Mutation:
    def fn(c: dict[str, Any]) -> None:
        c["turns"][0]["expected_calls"][0].update(changes)

    return fn


def _set(**fields: Any) -> Mutation:
    return lambda c: c.update(fields)


def _drop(key: str) -> Mutation:
    return lambda c: c.pop(key)


# (id, lines of the file, line of the error, substrings the error must contain)
MALFORMED: list[tuple[str, list[Any], int, list[str]]] = [
    ("bad-json", [_conv(), '{"format": "crmbench/1", "id": '], 2, ["invalid JSON"]),
    ("nan-is-not-json", [_conv(), '{"id": NaN}'], 2, ["invalid JSON", "NaN"]),
    ("not-an-object", [_conv(), "[1, 2]"], 2, ["expected a JSON object", "array"]),
    ("blank-lines-counted", ["", "", _conv(), "", "null"], 5, ["expected a JSON object"]),
    ("missing-format", _mutate(_drop("format")), 2, ["format: missing", "crmbench/1"]),
    ("wrong-format", _mutate(_set(format="crmbench/2")), 2, ["format: unsupported", "2"]),
    ("missing-id", _mutate(_drop("id")), 2, ["id: missing"]),
    ("bad-id-chars", _mutate(_set(id="CONV 12/a")), 2, ["id: 'CONV 12/a'", "letters"]),
    ("empty-id", _mutate(_set(id="")), 2, ["id: ''"]),
    ("duplicate-id", [_conv(), _conv()], 2, ["(CONV-0001): id: duplicate id", "a.jsonl:1"]),
    ("missing-turns", _mutate(_drop("turns")), 2, ["turns: missing"]),
    ("empty-turns", _mutate(_set(turns=[])), 2, ["turns: List should have at least 1 item"]),
    ("eleven-turns", _mutate(_set_turns(11, "complex")), 2, ["turns: List should have at most"]),
    ("unknown-top-level-key", _mutate(_set(colour="red")), 2, ["colour: unknown key"]),
    ("unknown-turn-key", _mutate(_turn0(assistant="Hi")), 2, ["turns[0].assistant: unknown key"]),
    ("unknown-call-key", _mutate(_call0(name="x")), 2, ["expected_calls[0].name: unknown key"]),
    ("unknown-workflow", _mutate(_set(workflow="Sales")), 2, ["workflow:", '"Sales"']),
    ("unknown-complexity", _mutate(_set(complexity="hard")), 2, ["complexity:", '"hard"']),
    (
        "simple-with-4-turns",
        _mutate(_set_turns(4, "simple")),
        2,
        ["complexity: 'simple' means 1–3 turns but the conversation has 4"],
    ),
    (
        "complex-with-2-turns",
        _mutate(_set_turns(2, "complex")),
        2,
        ["complexity: 'complex' means 7–10 turns but the conversation has 2"],
    ),
    (
        "us-date",
        _mutate(_set(reference_date="10/01/2025")),
        2,
        ["reference_date: '10/01/2025' is not a date written YYYY-MM-DD"],
    ),
    (
        "impossible-date",
        _mutate(_set(reference_date="2025-02-30")),
        2,
        ["reference_date: '2025-02-30' is not a valid date"],
    ),
    (
        "unknown-tool",
        _mutate(_call0(tool="create_deal")),
        2,
        ["a.jsonl:2 (CONV-0012): turns[0].expected_calls[0].tool: unknown tool 'create_deal'"],
    ),
    (
        "helper-tool",
        _mutate(_call0(tool="list_clients", args={})),
        2,
        ["turns[0].expected_calls[0].tool: 'list_clients' is a helper"],
    ),
    (
        "unknown-argument",
        _mutate(_call0(tool="create_new_client", args={"nmae": "Acme", "email": "a@b.test"})),
        2,
        ["expected_calls[0].args.nmae: unknown argument for create_new_client"],
    ),
    (
        "bad-reference-syntax",
        _mutate(_two_turns({"client_id": "{{turn_1.calls[x].result.client_id}}"})),
        2,
        ["turns[1].expected_calls[0].args.client_id: malformed reference", "calls[x]"],
    ),
    (
        "unclosed-reference",
        _mutate(_two_turns({"client_id": "{{turn_1.client_id"})),
        2,
        ["args.client_id: malformed reference '{{turn_1.client_id'"],
    ),
    (
        "forward-reference",
        _mutate(
            _two_turns(
                {"client_id": "x"},
                _turn("Find it.", _call("client_search", client_id="{{turn_2.client_id}}")),
            )
        ),
        2,
        ["turns[0].expected_calls[0].args.client_id: {{turn_2.client_id}}: forward reference"],
    ),
    (
        "same-turn-reference",
        _mutate(_call0(args={"name": "{{turn_1.name}}"})),
        2,
        ["forward reference: turn 1 refers to turn 1"],
    ),
    (
        "reference-to-turn-0",
        _mutate(_two_turns({"client_id": "{{turn_0.client_id}}"})),
        2,
        ["args.client_id: {{turn_0.client_id}}: turns are numbered from 1"],
    ),
    (
        "reference-to-missing-call",
        _mutate(_two_turns({"client_id": "{{turn_1.calls[3].result.client_id}}"})),
        2,
        ["turn 1 has 1 expected call(s), so calls[3] does not exist"],
    ),
    (
        "reference-to-turn-without-calls",
        _mutate(_two_turns({"client_id": "{{turn_1.client_id}}"}, _turn("Hello!"))),
        2,
        ["{{turn_1.client_id}}: turn 1 has no expected calls"],
    ),
    (
        "nested-reference-in-list",
        _mutate(
            _call0(tool="compare_quotes", args={"quote_ids": ["{{turn_1.quote_id}}", "{{oops}}"]})
        ),
        2,
        ["args.quote_ids[1]: malformed reference '{{oops}}'"],
    ),
    (
        "failure-without-error-contains",
        _mutate(_turn0(expect="failure")),
        2,
        ["turns[0].error_contains: required (non-empty) when expect is 'failure'"],
    ),
    (
        "failure-with-blank-error-contains",
        _mutate(_turn0(expect="failure", error_contains="  ")),
        2,
        ["turns[0].error_contains: required"],
    ),
    (
        "success-with-error-contains",
        _mutate(_turn0(error_contains="Probability")),
        2,
        ["turns[0].error_contains: only allowed when expect is 'failure'"],
    ),
    ("unknown-expect", _mutate(_turn0(expect="error")), 2, ["turns[0].expect:", '"error"']),
    (
        "double-brace-placeholder",
        _mutate(_turn0(user="Move {{opportunity_name}} to Proposal.")),
        2,
        ["turns[0].user: unrendered placeholder '{{opportunity_name}}'"],
    ),
    (
        "single-brace-placeholder",
        _mutate(_turn0(user="Move the Acme deal to {stage}.")),
        2,
        ["turns[0].user: unrendered placeholder '{stage}'"],
    ),
    ("blank-user", _mutate(_turn0(user="   ")), 2, ["turns[0].user: must not be blank"]),
    ("missing-user", _mutate(lambda c: c["turns"][0].pop("user")), 2, ["turns[0].user: missing"]),
    (
        "missing-expected-calls",
        _mutate(lambda c: c["turns"][0].pop("expected_calls")),
        2,
        ["turns[0].expected_calls: missing"],
    ),
    (
        "unknown-seed-table",
        _mutate(_set(seed={"deals": []})),
        2,
        ["seed.deals: unknown table"],
    ),
    (
        "unknown-seed-field",
        _mutate(_set(seed={"clients": [{"client_id": CLIENT_ID, "nmae": "Acme"}]})),
        2,
        ["seed.clients[0].nmae: unknown field of Client"],
    ),
    (
        "bad-seed-value",
        _mutate(_set(seed={"quotes": [{"quote_id": "q", "valid_until": "soon"}]})),
        2,
        ["seed.quotes[0]: invalid Quote record", "soon"],
    ),
    (
        "non-list-must-mention",
        _mutate(_turn0(reply={"must_mention": "Acme"})),
        2,
        ["turns[0].reply.must_mention: Input should be a valid list"],
    ),
    (
        "blank-must-mention-entry",
        _mutate(_turn0(reply={"must_mention": ["Acme", " "]})),
        2,
        ["turns[0].reply.must_mention[1]: must not be blank"],
    ),
    (
        "arc-format",
        [{"conversation_id": "arc-1", "turns": [{"user_utterance": "Find Acme"}]}],
        1,
        ["a.jsonl:1: ", "Arc format", "Arc importer"],
    ),
]


@pytest.mark.parametrize(
    ("lines", "line", "needles"),
    [pytest.param(lines, line, needles, id=case_id) for case_id, lines, line, needles in MALFORMED],
)
def test_malformed(tmp_path: Path, lines: list[Any], line: int, needles: list[str]) -> None:
    path = _write(tmp_path / "a.jsonl", copy.deepcopy(lines))
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    problems = info.value.problems
    assert len(problems) == 1, str(info.value)
    problem = problems[0]
    assert (problem.file, problem.line) == (str(path), line)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}")
    for needle in needles:
        assert needle.replace("a.jsonl", str(path)) in message


def test_malformed_kinds_are_distinct() -> None:
    assert len({case[0] for case in MALFORMED}) == len(MALFORMED) >= 20


def test_exact_message_format(tmp_path: Path) -> None:
    lines: list[Any] = [_conv(f"OK-{i}") for i in range(1, 17)]
    conv = _conv("CONV-0012", complexity="medium")
    conv["turns"] = [_turn(f"Step {i}.", _call("client_search")) for i in range(4)]
    conv["turns"][2]["expected_calls"][0]["tool"] = "create_deal"
    path = _write(tmp_path / "x.jsonl", [*lines, conv])
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert str(info.value) == (
        f"{path}:17 (CONV-0012): turns[2].expected_calls[0].tool: unknown tool 'create_deal'"
    )


def test_duplicate_id_across_files(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.jsonl", [_conv("CONV-0001"), _conv("CONV-0002")])
    b = _write(tmp_path / "b.jsonl", ["", _conv("CONV-0002")])
    with pytest.raises(DatasetError) as info:
        load_dataset([a, b])
    assert str(info.value) == f"{b}:2 (CONV-0002): id: duplicate id, first defined at {a}:2"


def test_all_problems_reported_together(tmp_path: Path) -> None:
    bad_tool = _conv("CONV-0003")
    bad_tool["turns"][0]["expected_calls"][0]["tool"] = "create_deal"
    lines: list[Any] = [
        _conv("CONV-0001", workflow="Sales", reference_date="2025-13-01"),
        "{not json",
        _conv("CONV-0002"),
        bad_tool,
        "",
        _conv("CONV-0002"),
    ]
    path = _write(tmp_path / "a.jsonl", lines)
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    found = [(p.line, p.field) for p in info.value.problems]
    assert found == [
        (1, "workflow"),
        (1, "reference_date"),
        (2, None),
        (4, "turns[0].expected_calls[0].tool"),
        (6, "id"),
    ]
    assert str(info.value).startswith("5 problems in the dataset:\n")


def test_problems_are_capped_per_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.jsonl", ["[]"] * 80)
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert len(info.value.problems) == 51
    assert info.value.problems[-1].message == "stopped after 50 problems"


def test_missing_path_and_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError) as info:
        load_dataset([tmp_path / "nope.jsonl", tmp_path / "empty"])
    assert [p.message for p in info.value.problems] == [
        "no such file or directory",
        "no *.jsonl files in this directory",
    ]


@pytest.mark.parametrize(
    ("text", "why"),
    [("", "it is empty"), ("\n   \n\t\n", "only blank lines")],
    ids=["empty", "blank-lines"],
)
def test_a_file_without_a_conversation_is_an_error(tmp_path: Path, text: str, why: str) -> None:
    """An empty file is a mistake (a failed export, a wrong path), never an empty run."""
    path = tmp_path / "empty.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    (problem,) = info.value.problems
    assert (problem.file, problem.line) == (str(path), None)
    assert str(problem) == f"{path}: the file holds no conversation ({why})"


def test_a_folder_of_empty_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text("", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(DatasetError) as info:
        load_dataset(tmp_path)
    assert [(Path(p.file).name, p.message) for p in info.value.problems] == [
        ("a.jsonl", "the file holds no conversation (it is empty)"),
        ("b.jsonl", "the file holds no conversation (only blank lines)"),
    ]


def test_an_empty_file_beside_a_valid_one_is_still_an_error(tmp_path: Path) -> None:
    good = _write(tmp_path / "a.jsonl", [_conv()])
    empty = tmp_path / "b.jsonl"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"b\.jsonl: the file holds no conversation"):
        load_dataset([good, empty])


def test_model_errors_without_loader() -> None:
    """Validating a dict directly gives a readable pydantic error too."""
    conv = _conv()
    conv["turns"][0]["expected_calls"][0]["tool"] = "create_deal"
    with pytest.raises(ValueError, match="unknown tool 'create_deal'"):
        Conversation.model_validate(conv)


# -- references --------------------------------------------------------------------------

RESULTS: dict[int, list[Any]] = {
    1: [[{"client_id": "c-1", "name": "Acme"}, {"client_id": "c-2", "name": "Acme East"}]],
    2: [
        {"opportunity_id": "o-1", "amount": 85000.0, "client": {"name": "Acme", "tier": 2}},
        {"quote_id": "q-1", "amount": 1200},
    ],
    3: [[]],
}


def test_resolve_whole_value_keeps_type() -> None:
    assert resolve("{{turn_2.amount}}", RESULTS) == 85000.0
    assert isinstance(resolve("{{turn_2.amount}}", RESULTS), float)
    assert resolve("{{turn_2.client.tier}}", RESULTS) == 2
    assert resolve("{{turn_2.client}}", RESULTS) == {"name": "Acme", "tier": 2}


def test_resolve_interpolates_and_walks_nested_values() -> None:
    args = {
        "content": "Deal {{turn_2.opportunity_id}} for {{turn_2.amount}} ({{turn_1.name}})",
        "ids": ["{{turn_2.quote_id}}", "plain", 7],
        "updates": {"client_id": "{{turn_1.client_id}}"},
    }
    assert resolve(args, RESULTS) == {
        "content": "Deal o-1 for 85000.0 (Acme)",
        "ids": ["q-1", "plain", 7],
        "updates": {"client_id": "c-1"},
    }


def test_resolve_list_result_uses_first_element() -> None:
    assert resolve("{{turn_1.client_id}}", RESULTS) == "c-1"
    assert resolve("{{turn_1.calls[0].result.name}}", RESULTS) == "Acme"


def test_resolve_first_call_with_field_and_explicit_call() -> None:
    assert resolve("{{turn_2.quote_id}}", RESULTS) == "q-1"
    assert resolve("{{turn_2.amount}}", RESULTS) == 85000.0  # first call having it
    assert resolve("{{turn_2.calls[1].result.amount}}", RESULTS) == 1200
    assert resolve("{{turn_2.calls[0].result.client.name}}", RESULTS) == "Acme"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "{{turn_2.missing}}", "no call of turn 2 returned a field 'missing'", id="field"
        ),
        pytest.param("{{turn_2.client.nope}}", "has no field 'client.nope'", id="nested-field"),
        pytest.param("{{turn_2.calls[5].result.x}}", "so calls[5] does not exist", id="call"),
        pytest.param("{{turn_9.x}}", "there are no results of turn 9", id="turn"),
        pytest.param("{{turn_3.calls[0].result.x}}", "has no field 'x'", id="empty-list"),
        pytest.param("id {{turn_1.name", "malformed reference", id="malformed"),
    ],
)
def test_resolve_errors(text: str, message: str) -> None:
    with pytest.raises(RefError, match=message.replace("[", r"\[").replace(".", r"\.")):
        resolve({"a": [text]}, RESULTS)


def test_find_refs_walks_nested_values() -> None:
    refs = find_refs({"a": ["{{turn_1.x}} and {{turn_3.calls[2].result.b.c}}"], "b": 3})
    assert [(r.turn, r.call, r.field) for r in refs] == [(1, None, ("x",)), (3, 2, ("b", "c"))]
    assert find_refs({"plain": "no refs here"}) == []
