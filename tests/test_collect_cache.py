"""The collect cache: a dataset validated once is not validated again while its bytes
and the plugin stay the same — and is validated again the moment either changes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from plugin_support.project import MEMORY, make_project, snapshot_lines

from pytest_crmbench import collect_cache, items
from pytest_crmbench.dataset import answer_key
from pytest_crmbench.dataset.loader import DatasetError


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    items._load_conversations.cache_clear()
    yield
    items._load_conversations.cache_clear()


def _dataset(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "conversations.jsonl"
    path.parent.mkdir()
    path.write_text("\n".join(snapshot_lines()) + "\n", encoding="utf-8")
    return path


def _snapshot(cases: list[items.Case]) -> list[tuple[object, ...]]:
    return [(c.test_id, c.trial, c.source, c.markers(), c.tools(), c.compact) for c in cases]


def _no_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the dataset was validated again")

    monkeypatch.setattr(items, "load_dataset", refuse)


def test_a_second_collection_takes_the_cases_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths, cache = (str(_dataset(tmp_path)),), tmp_path / "cache"
    first, dataset = items.conversation_cases(paths, 2, cache)
    assert len(list(cache.glob("*.json"))) == 1
    items._load_conversations.cache_clear()
    _no_validation(monkeypatch)
    again, cached = items.conversation_cases(paths, 2, cache)
    assert _snapshot(again) == _snapshot(first)  # lines, markers, ids, work: all equal
    assert cached.sha256 == dataset.sha256 and cached.files == dataset.files
    assert cached.locations == dataset.locations
    assert again[0].conversation == first[0].conversation  # rebuilt from the same line


def test_a_cache_hit_still_marks_the_files_as_the_answer_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths, cache = (str(_dataset(tmp_path)),), tmp_path / "cache"
    items.conversation_cases(paths, 1, cache)
    items._load_conversations.cache_clear()
    protected: list[str] = []
    monkeypatch.setattr(answer_key, "protect", lambda p: protected.append(str(p)))
    _no_validation(monkeypatch)
    items.conversation_cases(paths, 1, cache)
    assert protected == list(paths)


@pytest.mark.parametrize("change", ["file", "code"])
def test_a_changed_file_or_plugin_is_validated_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    path = _dataset(tmp_path)
    paths, cache = (str(path),), tmp_path / "cache"
    items.conversation_cases(paths, 1, cache)
    items._load_conversations.cache_clear()
    if change == "file":  # one conversation now names a tool that does not exist
        lines = path.read_text(encoding="utf-8").splitlines()
        conv = json.loads(lines[0])
        conv["turns"][0]["expected_calls"][0]["tool"] = "no_such_tool"
        path.write_text("\n".join([json.dumps(conv), *lines[1:]]) + "\n", encoding="utf-8")
        with pytest.raises(DatasetError, match="unknown tool 'no_such_tool'"):
            items.conversation_cases(paths, 1, cache)
    else:  # another version of the plugin: same bytes, validated again
        monkeypatch.setattr(collect_cache, "code_fingerprint", lambda: "another plugin")
        validated: list[object] = []
        real = items.load_dataset
        monkeypatch.setattr(
            items, "load_dataset", lambda *a, **k: validated.append(a) or real(*a, **k)
        )
        items.conversation_cases(paths, 1, cache)
        assert validated
        assert len(list(cache.glob("*.json"))) == 2


def test_a_damaged_entry_is_a_miss(tmp_path: Path) -> None:
    paths, cache = (str(_dataset(tmp_path)),), tmp_path / "cache"
    first, _ = items.conversation_cases(paths, 1, cache)
    for entry in cache.glob("*.json"):
        entry.write_text('{"version": 1, "sha256": "x", "kept": [', encoding="utf-8")
    items._load_conversations.cache_clear()
    again, _ = items.conversation_cases(paths, 1, cache)
    assert _snapshot(again) == _snapshot(first)


def test_the_cache_keeps_a_few_datasets(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    lines = snapshot_lines()
    for n in range(collect_cache.MAX_ENTRIES + 3):
        path = tmp_path / f"d{n}.jsonl"
        path.write_text(lines[n % len(lines)] + "\n", encoding="utf-8")
        items.conversation_cases((str(path),), 1, cache)
    assert len(list(cache.glob("*.json"))) == collect_cache.MAX_ENTRIES


def test_pytest_keeps_it_in_its_cache_and_no_cacheprovider_turns_it_off(
    pytester: pytest.Pytester,
) -> None:
    make_project(pytester)
    folder = pytester.path / ".pytest_cache" / "d" / "crmbench-collect"
    off = pytester.runpytest_subprocess(*MEMORY, "--co", "-q")  # MEMORY: no cacheprovider
    assert off.ret == 0 and not folder.exists()
    args = ("--crm-backend", "memory", "-p", "no:hypothesispytest", "--co", "-q")
    cold = pytester.runpytest_subprocess(*args)
    assert len(list(folder.glob("*.json"))) == 1
    warm = pytester.runpytest_subprocess(*args)
    assert [x for x in warm.outlines if "::" in x] == [x for x in cold.outlines if "::" in x]
    pytester.runpytest_subprocess(*args, "--cache-clear")  # cleared, then stored again
    assert len(list(folder.glob("*.json"))) == 1
