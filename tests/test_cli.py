"""``crmbench``: bad input gives one line on stderr and exit status 2 (never a traceback);
a closed pipe ends a command quietly; a missing dataset is said, not served silently.

Error cases run in-process (:func:`pytest_crmbench.cli.main` with ``capsys``); what is
about the process itself (tracebacks, pipes, signals) runs ``python -m`` in a subprocess.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from plugin_support.project import SNAPSHOT_DATASET

import pytest_crmbench.fakemodel.cli as fake_cli
from pytest_crmbench.cli import main
from pytest_crmbench.fakemodel.server import FakeModelServer

FIXTURES = Path(__file__).resolve().parent / "arc_fixtures"
LINT_FILE = FIXTURES / "project_defects.jsonl"
CRMBENCH = [sys.executable, "-m", "pytest_crmbench.cli"]
TIMEOUT = 120  # seconds; every subprocess here ends long before


class ServerStarted(Exception):
    """Raised instead of serving: an error case must be refused before the server runs."""


@pytest.fixture(autouse=True)
def no_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process ``fake-server`` runs never block: serving closes the socket and raises
    :class:`ServerStarted`; the SIGTERM handler is not installed in the test process."""

    def refuse(self: FakeModelServer) -> None:
        self._httpd.server_close()
        raise ServerStarted(self.base_url)

    monkeypatch.setattr(FakeModelServer, "serve_forever", refuse)
    monkeypatch.setattr(signal, "signal", lambda *args: None)


def one_line_error(capsys: pytest.CaptureFixture[str], command: str) -> str:
    """The single stderr line ``crmbench <command>: <what went wrong>; <what to do>``."""
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    line = lines[0]
    assert line.startswith(f"crmbench {command}: "), line
    what, sep, todo = line[len(f"crmbench {command}: ") :].rpartition("; ")
    assert sep and what.strip() and todo.strip(), line
    assert "Traceback" not in captured.err
    assert captured.out == "", captured.out
    return line


# -- fake-server: bad input ---------------------------------------------------------------


def _fake_server_args(tmp_path: Path, case: str) -> list[str]:
    """The arguments of one bad ``fake-server`` invocation (files made under tmp_path)."""
    good = ["--dataset", str(SNAPSHOT_DATASET)]
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text("{not json\n[]\n", encoding="utf-8")
    empty_dir = tmp_path / "nothing"
    empty_dir.mkdir()
    bad_golden = tmp_path / "bad.json"
    bad_golden.write_text('{"format": "crmbench-golden/1"}', encoding="utf-8")
    cases = {
        "missing-dataset": ["--dataset", str(tmp_path / "nonexistent.jsonl")],
        "malformed-dataset": ["--dataset", str(bad_json)],
        "dataset-folder-without-jsonl": ["--dataset", str(empty_dir)],
        "missing-golden": ["--golden", str(tmp_path / "nonexistent.json")],
        "golden-folder-without-json": ["--golden", str(empty_dir)],
        "malformed-golden": ["--golden", str(bad_golden)],
        "port-too-big": [*good, "--port", "99999"],
        "port-negative": [*good, "--port", "-1"],
        "latency-negative": [*good, "--latency", "-1"],
        "latency-nan": [*good, "--latency", "nan"],
        "fault-rate-2": [*good, "--fault-rate", "2"],
        "fault-kind-unknown": [*good, "--faults", "bogus"],
        "no-fault-kind": [*good, "--fault-rate", "0.5", "--faults", ","],
        "retry-after-negative": [*good, "--retry-after", "-1"],
        "timeout-sleep-inf": [*good, "--timeout-sleep", "inf"],
    }
    return ["fake-server", *cases[case]]


FAKE_SERVER_CASES = {
    "missing-dataset": "nonexistent.jsonl: no such file or directory",
    "malformed-dataset": "2 problems in the dataset",
    "dataset-folder-without-jsonl": "no *.jsonl files",
    "missing-golden": "nonexistent.json",
    "golden-folder-without-json": "holds no *.json",
    "malformed-golden": "bad.json",
    "port-too-big": "--port 99999",
    "port-negative": "--port -1",
    "latency-negative": "--latency -1",
    "latency-nan": "--latency nan",
    "fault-rate-2": "--fault-rate 2",
    "fault-kind-unknown": "bogus",
    "no-fault-kind": "--faults",
    "retry-after-negative": "--retry-after -1",
    "timeout-sleep-inf": "--timeout-sleep inf",
}


@pytest.mark.parametrize("case", list(FAKE_SERVER_CASES))
def test_fake_server_refuses_bad_input_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, case: str
) -> None:
    status = main(_fake_server_args(tmp_path, case))
    line = one_line_error(capsys, "fake-server")
    assert status == 2
    assert FAKE_SERVER_CASES[case] in line


def test_fake_server_refuses_a_port_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status = main(["fake-server", "--dataset", str(SNAPSHOT_DATASET), "--port", str(port)])
    line = one_line_error(capsys, "fake-server")
    assert status == 2
    assert f"127.0.0.1:{port}" in line and "--port" in line


def test_fake_server_error_is_not_a_traceback_at_process_level() -> None:
    proc = subprocess.run(
        [*CRMBENCH, "fake-server", "--dataset", "/nonexistent"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        "crmbench fake-server: /nonexistent: no such file or directory; "
        "give --dataset an existing JSONL file or a folder of them\n"
    )


# -- fake-server: no dataset found --------------------------------------------------------


def test_fake_server_says_when_no_dataset_is_found(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside a checkout (no shipped data anywhere) it still starts, but says it serves
    nothing and how to give it a dataset."""

    def nowhere() -> Path:
        raise FileNotFoundError("cannot find the project's 'cases' folder")

    monkeypatch.setattr(fake_cli, "shipped_conversations", nowhere)
    with pytest.raises(ServerStarted):
        main(["fake-server"])
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith("crmbench fake-server: ")
    assert "serving 0 conversations" in captured.err and "--dataset" in captured.err
    assert "(0 conversations)" in captured.out


@pytest.fixture
def empty_home(tmp_path: Path) -> Path:
    """A ``CRMBENCH_HOME`` whose ``cases`` folder holds no dataset."""
    (tmp_path / "cases").mkdir()
    return tmp_path


def test_fake_server_without_the_shipped_file_warns_and_serves(empty_home: Path) -> None:
    env = {**os.environ, "CRMBENCH_HOME": str(empty_home)}
    proc = subprocess.Popen(
        [*CRMBENCH, "fake-server", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the process prints this, or exits (EOF)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert first.startswith("fake model server on http://127.0.0.1:"), (first, err)
    assert "(0 conversations)" in first
    assert "Traceback" not in err
    warning = [line for line in err.splitlines() if "serving 0 conversations" in line]
    assert len(warning) == 1, err
    assert warning[0].startswith("crmbench fake-server: ") and "--dataset" in warning[0]
    assert str(empty_home / "cases" / "conversations.jsonl") in warning[0]


# -- lint: bad input ----------------------------------------------------------------------


@pytest.mark.parametrize("json_flag", [[], ["--json"]], ids=["text", "json"])
def test_lint_of_a_missing_path_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, json_flag: list[str]
) -> None:
    missing = tmp_path / "nonexistent.jsonl"
    status = main(["lint", str(LINT_FILE), str(missing), *json_flag])
    line = one_line_error(capsys, "lint")
    assert status == 2
    assert f"{missing}: no such file or directory" in line


def test_lint_of_a_folder_without_a_dataset_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("not a dataset", encoding="utf-8")
    status = main(["lint", str(tmp_path)])
    line = one_line_error(capsys, "lint")
    assert status == 2
    assert f"folder {tmp_path} holds no *.jsonl dataset" in line


def test_lint_of_an_empty_file_is_a_defect_not_a_clean_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    status = main(["lint", str(empty)])
    out = capsys.readouterr().out
    assert status == 1
    assert "no defects found" not in out
    assert f"{empty}: invalid-file: the file holds no conversation" in out


# -- generate: bad input ------------------------------------------------------------------


def test_generate_refuses_a_file_as_output(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "afile"
    target.write_text("x", encoding="utf-8")
    status = main(["generate", "--output", str(target), "--count", "2"])
    line = one_line_error(capsys, "generate")
    assert status == 2
    assert f"--output {target} is a file" in line
    assert target.read_text(encoding="utf-8") == "x"


def test_generate_refuses_an_output_it_cannot_create(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    parent = tmp_path / "afile"
    parent.write_text("x", encoding="utf-8")
    status = main(["generate", "--output", str(parent / "cases"), "--count", "2"])
    line = one_line_error(capsys, "generate")
    assert status == 2
    assert f"cannot write to {parent / 'cases'}" in line


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes anywhere")
def test_generate_refuses_a_read_only_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        status = main(["generate", "--output", str(folder), "--count", "2"])
    finally:
        folder.chmod(0o700)
    line = one_line_error(capsys, "generate")
    assert status == 2
    assert f"cannot write to {folder}" in line


@pytest.mark.parametrize("count", ["0", "-5"])
def test_generate_refuses_a_count_below_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, count: str
) -> None:
    status = main(["generate", "--output", str(tmp_path / "out"), "--count", count])
    line = one_line_error(capsys, "generate")
    assert status == 2
    assert f"--count {count}" in line
    assert not (tmp_path / "out").exists()


# -- a closed pipe ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["tools", "--json"],
        ["tools", "--all"],
        ["lint", str(LINT_FILE)],
        ["lint", str(LINT_FILE), "--json"],
    ],
    ids=["tools-json", "tools", "lint", "lint-json"],
)
def test_a_closed_pipe_ends_the_command_quietly(args: list[str]) -> None:
    """``crmbench tools --json | head -1``: the reader is gone before the command writes
    (its read end closed at once), so every write fails with EPIPE."""
    read_end, write_end = os.pipe()
    try:
        proc = subprocess.Popen([*CRMBENCH, *args], stdout=write_end, stderr=subprocess.PIPE)
    finally:
        os.close(write_end)
        os.close(read_end)
    _, err = proc.communicate(timeout=TIMEOUT)
    assert err.decode() == ""
    assert proc.returncode == 141  # 128 + SIGPIPE, as a shell reports a closed pipe
