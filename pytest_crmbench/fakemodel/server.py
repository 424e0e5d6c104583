"""A local fake model server: the Anthropic Messages and OpenAI Chat Completions APIs on
127.0.0.1, answered by a policy, with simulated latency and injected faults.

Latency runs from a request's arrival: the server's own work (parsing, the policy,
rendering) is inside it, so a loaded machine does not make the simulated model slower.

Base URLs: ``server.anthropic_base_url`` (``http://127.0.0.1:PORT``; the SDK appends
``/v1/messages``) and ``server.openai_base_url`` (``http://127.0.0.1:PORT/v1``). Any path
ending in ``/messages`` or ``/chat/completions`` is accepted. ``GET /_stats`` returns the
counters as JSON.

Faults (``FaultConfig``), drawn per request with a RNG seeded by (seed, request body,
how many times that body was seen) — so a run is reproducible even with concurrent
clients, and a retried request gets a fresh draw:

=================  =================================================================
``rate_limit``     HTTP 429 with ``Retry-After`` (``retry_after`` seconds)
``server_error``   HTTP 500
``overloaded``     HTTP 529 ``overloaded_error`` (Anthropic); 503 on the OpenAI API
``timeout``        no answer for ``timeout_sleep`` seconds, then the connection closes
``malformed_json`` a tool call whose arguments are not valid JSON
``unknown_tool``   a call to a tool that does not exist
``wrong_types``    the intended call with every argument of the wrong type
=================  =================================================================

Usage is counted (``stats``) only for answers actually delivered, in the agents' terms:
``input_tokens`` (Anthropic: uncached input; OpenAI: prompt tokens), ``output_tokens``,
``cache_read_tokens``, ``cache_write_tokens``, split by role (``agent``/``judge``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pytest_crmbench.fakemodel.policies import Policy, call_id, is_judge_request
from pytest_crmbench.fakemodel.wire import (
    Api,
    FakeCall,
    FakeReply,
    FakeRequest,
    error_body,
    parse_anthropic,
    parse_openai,
    prompt_size,
    render_anthropic,
    render_openai,
)

HTTP_FAULTS = ("rate_limit", "server_error", "overloaded", "timeout")
TOOL_FAULTS = ("malformed_json", "unknown_tool", "wrong_types")
ALL_FAULTS = HTTP_FAULTS + TOOL_FAULTS


@dataclass(frozen=True)
class FaultConfig:
    rate: float = 0.0
    kinds: tuple[str, ...] = ALL_FAULTS
    seed: int = 0
    retry_after: float = 1.0
    timeout_sleep: float = 3.0
    roles: tuple[str, ...] = ("agent",)  # which requests may fail: agent and/or judge
    # Deterministic faults for the first requests (of those roles), in order; "ok" = none.
    # Used before (and instead of) the random draw.
    sequence: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = (set(self.kinds) | set(self.sequence)) - set(ALL_FAULTS) - {"ok"}
        if unknown:
            raise ValueError(f"unknown fault kind(s): {', '.join(sorted(unknown))}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("fault rate must be between 0 and 1")


@dataclass
class Stats:
    requests: int = 0
    answered: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    usage: dict[str, dict[str, int]] = field(default_factory=dict)
    first_request_at: float | None = None  # time.monotonic() of the first request
    last_answer_at: float | None = None  # … and of the last answer delivered
    in_flight: int = 0  # requests being handled (received, answer not yet sent)
    max_in_flight: int = 0  # the most at any moment

    def add_usage(self, role: str, usage: dict[str, int], sign: int = 1) -> None:
        total = self.usage.setdefault(
            role,
            {
                "input_tokens": 0,
                "output_tokens": 0,
                "cache_read_tokens": 0,
                "cache_write_tokens": 0,
                "calls": 0,
            },
        )
        for key, value in usage.items():
            total[key] += sign * value
        total["calls"] += sign

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "answered": self.answered,
            "faults": dict(self.faults),
            "usage": {k: dict(v) for k, v in self.usage.items()},
            "first_request_at": self.first_request_at,
            "last_answer_at": self.last_answer_at,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
        }


def _wrong_types(args: Any) -> dict[str, Any]:
    if not isinstance(args, dict) or not args:
        return {"query": {"unexpected": ["object"]}}
    return {k: ("not-a-number" if isinstance(v, int | float) else [v]) for k, v in args.items()}


class FakeModelServer:
    """``with FakeModelServer(policy, latency=0.25) as server: …`` (random port)."""

    def __init__(
        self,
        policy: Policy,
        *,
        latency: float = 0.0,
        faults: FaultConfig | None = None,
        api_key: str | None = None,
        echo_key_in_errors: bool = False,
        max_context_tokens: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = False,
        log: Any = None,
    ) -> None:
        self.policy = policy
        self.latency = latency
        self.faults = faults or FaultConfig()
        self.api_key = api_key
        self.echo_key_in_errors = echo_key_in_errors
        self.max_context_tokens = max_context_tokens
        self.record = record
        self.requests: list[FakeRequest] = []
        # With ``record``: (time.monotonic() of arrival, outcome) of every request, where
        # the outcome is "ok", a fault kind or an HTTP status.
        self.timeline: list[tuple[float, str]] = []
        self.stats = Stats()
        self._log = log
        self._lock = threading.Lock()
        self._seen: Counter[str] = Counter()
        self._cached_prefixes: set[str] = set()
        self._seq = 0
        self._eligible = 0
        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._httpd.app = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def anthropic_base_url(self) -> str:
        return self.base_url

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"

    def start(self) -> FakeModelServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},  # stop() returns within 50 ms
                name="fake-model-server",
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stats_dict(self) -> dict[str, Any]:
        with self._lock:
            return self.stats.as_dict()

    def reset_stats(self) -> None:
        with self._lock:
            self.stats = Stats()
            self.timeline.clear()

    # -- handling ----------------------------------------------------------------------
    def _draw_fault(self, raw: bytes, role: str, req: FakeRequest) -> str | None:
        cfg = self.faults
        if role not in cfg.roles:
            return None
        with self._lock:
            index = self._eligible
            self._eligible += 1
        if index < len(cfg.sequence):
            kind = cfg.sequence[index]
            return None if kind == "ok" else kind
        if cfg.rate <= 0:
            return None
        digest = hashlib.sha256(raw).hexdigest()
        with self._lock:
            n = self._seen[digest]
            self._seen[digest] += 1
        rng = random.Random(f"{cfg.seed}|{digest}|{n}")
        if rng.random() >= cfg.rate:
            return None
        kind = rng.choice(cfg.kinds)
        if kind in TOOL_FAULTS and not req.can_call_tools:
            return None
        return kind

    def handle(self, path: str, raw: bytes, headers: Any) -> tuple[int, dict[str, str], Any]:
        """(status, extra headers, JSON body); body None = drop the connection.

        Counted in flight from arrival until the answer is ready (before it is sent, so a
        client that has read an answer never finds its request still counted)."""
        arrived = time.monotonic()
        with self._lock:
            self.stats.in_flight += 1
            self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
        outcome = "error"
        try:
            status, extra, body = self._handle(path, raw, headers)
            outcome = "dropped" if body is None else "ok" if status == 200 else str(status)
            return status, extra, body
        finally:
            with self._lock:
                self.stats.in_flight -= 1
                if self.record:
                    self.timeline.append((arrived, outcome))

    def _handle(self, path: str, raw: bytes, headers: Any) -> tuple[int, dict[str, str], Any]:
        # A model answers ``latency`` seconds after the request arrived, however long this
        # server spends on it: its own CPU (parsing, sizing, rendering) is not added to the
        # latency a client sees, so a loaded benchmark machine does not slow the "model".
        due = time.monotonic() + self.latency
        api: Api = "anthropic" if path.rstrip("/").endswith("/messages") else "openai"
        with self._lock:
            self.stats.requests += 1
            if self.stats.first_request_at is None:
                self.stats.first_request_at = time.monotonic()
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            req = parse_anthropic(body) if api == "anthropic" else parse_openai(body)
        except (ValueError, AttributeError, TypeError) as exc:
            kind = "invalid_request_error"
            return 400, {}, error_body(api, 400, kind, f"malformed request: {exc}")
        if self.api_key is not None:
            presented = headers.get("x-api-key") or ""
            auth = headers.get("authorization") or ""
            if auth.lower().startswith("bearer "):
                presented = presented or auth[7:]
            if presented != self.api_key:
                shown = f": {presented}" if self.echo_key_in_errors else ""
                message = f"invalid x-api-key{shown}"
                return 401, {}, error_body(api, 401, "authentication_error", message)
        size = prompt_size(req)
        if self.max_context_tokens is not None and size.total > self.max_context_tokens:
            message = (
                f"prompt is too long: {size.total} tokens > {self.max_context_tokens} maximum"
                if api == "anthropic"
                else f"This model's maximum context length is {self.max_context_tokens} "
                f"tokens. However, your messages resulted in {size.total} tokens."
            )
            kind = "invalid_request_error" if api == "anthropic" else "context_length_exceeded"
            return 400, {}, error_body(api, 400, kind, message)
        role = "judge" if is_judge_request(req) else "agent"
        fault = self._draw_fault(raw, role, req)
        if fault is not None:
            with self._lock:
                self.stats.faults[fault] += 1
        if fault == "rate_limit":
            headers_out = {"retry-after": f"{self.faults.retry_after:g}"}
            body_out = error_body(api, 429, "rate_limit_error", "rate limited (injected)")
            return 429, headers_out, body_out
        if fault == "server_error":
            return 500, {}, error_body(api, 500, "api_error", "internal error (injected)")
        if fault == "overloaded":
            status = 529 if api == "anthropic" else 503
            return status, {}, error_body(api, status, "overloaded_error", "Overloaded (injected)")
        if fault == "timeout":
            time.sleep(self.faults.timeout_sleep)
            return 0, {}, None
        if self.record:
            with self._lock:
                self.requests.append(req)
        reply = self.policy.respond(req)
        if fault in ("malformed_json", "unknown_tool", "wrong_types"):
            reply = self._corrupt(req, reply, fault)
        with self._lock:
            self._seq += 1
            seq = self._seq
            cached = size.prefix_key in self._cached_prefixes
            if req.cache_marked:
                self._cached_prefixes.add(size.prefix_key)
        if api == "anthropic":
            read = size.prefix if req.cache_marked and cached else 0
            write = size.prefix if req.cache_marked and not cached else 0
            rest = size.total - read - write
            out, usage = render_anthropic(req, reply, f"msg_fake{seq:08d}", read, write, rest)
        else:
            out, usage = render_openai(
                req, reply, f"chatcmpl-fake{seq:08d}", size.total, size.prefix if cached else 0
            )
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        return 200, {"x-fake-role": role}, (out, role, usage)

    @staticmethod
    def _corrupt(req: FakeRequest, reply: FakeReply, fault: str) -> FakeReply:
        tag = "fault" + fault[:3]
        intended = reply.calls[0] if reply.calls else None
        if fault == "unknown_tool" or (fault == "wrong_types" and intended is None):
            return FakeReply("", [FakeCall(call_id(req, tag), "delete_all_records", {})])
        if fault == "wrong_types" and intended is not None:
            return FakeReply(
                "", [FakeCall(call_id(req, tag), intended.name, _wrong_types(intended.args))]
            )
        name = intended.name if intended is not None else (req.tools[0] if req.tools else "x")
        return FakeReply("", [FakeCall(call_id(req, tag), name, '{"name": "Acme", "amount": ')])

    def delivered(self, role: str, usage: dict[str, int], sign: int = 1) -> None:
        with self._lock:
            self.stats.answered += sign
            self.stats.add_usage(role, usage, sign)
            self.stats.last_answer_at = time.monotonic()

    def log(self, line: str) -> None:
        if self._log is not None:
            self._log(line)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "crmbench-fake-model/1"
    disable_nagle_algorithm = True  # headers and body go out at once (no 40 ms stalls)

    @property
    def app(self) -> FakeModelServer:
        return self.server.app  # type: ignore[attr-defined,no-any-return]

    def log_message(self, format: str, *args: Any) -> None:
        return None  # quiet; never logs headers (they carry keys)

    def _send(self, status: int, headers: dict[str, str], body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/_stats"):
            self._send(200, {}, self.app.stats_dict())
        else:
            self._send(200, {}, {"service": "crmbench fake model", "apis": ["anthropic", "openai"]})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        if not (path.rstrip("/").endswith("/messages") or path.endswith("/chat/completions")):
            self._send(404, {}, {"error": {"type": "not_found_error", "message": path}})
            return
        try:
            status, headers, body = self.app.handle(path, raw, self.headers)
        except Exception as exc:  # a policy bug: a 500 the client can see, not a hang
            self._send(500, {}, {"error": {"type": "api_error", "message": f"fake: {exc!r}"}})
            return
        if body is None:  # injected timeout: drop the connection without an answer
            self.close_connection = True
            return
        if status == 200:
            out, role, usage = body
            # Counted before the last byte leaves, so a client that read the answer
            # always finds it in the stats; taken back if the client already left.
            self.app.delivered(role, usage)
            try:
                self._send(200, headers, out)
            except OSError:
                self.app.delivered(role, usage, sign=-1)
                return
            self.app.log(f"200 {path} role={role} usage={usage}")
        else:
            with contextlib.suppress(OSError):
                self._send(status, headers, body)
            self.app.log(f"{status} {path}")
