"""What the LLM agents share: the tool loop, bounded retries, usage and cost, redaction.

A provider (:class:`Backend`) knows one API — how to build requests, read replies and
classify its SDK's exceptions; :class:`LLMAgent` runs the conversation on top of it:

* one turn = model call → tool calls (executed in order through the runner's handle,
  all results sent back) → model call → … until the model answers in text. When the
  handle reports its per-turn call limit, or after ``max_model_calls - 1`` model calls,
  one last call is made with tools disabled so the model answers the user;
* the history (user, assistant and tool messages) is kept across the turns of a
  conversation and reset by :meth:`LLMAgent.start`;
* tool-call mistakes of the model (unparseable JSON arguments, arguments that are not
  an object) are answered with a tool error, never raised; unknown tools and wrong
  argument types are refused by the CRM through the handle — the model sees the error
  and the turn is scored, not crashed;
* API failures: the SDK retries first (``sdk_max_retries``); on top of it
  :func:`call_with_retries` retries transient failures (429, 5xx, 529 overloaded,
  timeouts, connection errors) with exponential backoff and jitter, honouring
  ``Retry-After``, bounded by a number of attempts and a time budget. Whatever is left
  (auth, bad request, context overflow, persistent outage) raises
  :class:`~pytest_crmbench.agents.base.AgentUnavailable` with a redacted reason: the
  item becomes a pytest *error*, not a failure;
* shared per process (:mod:`~pytest_crmbench.agents.endpoints`): one SDK client per
  endpoint and credentials, the ``--agent-rpm``/``--agent-tpm``/``--agent-max-connections``
  limits, and the pause a 429 with Retry-After puts on every caller of the endpoint;
* ``--agent-cache DIR`` (:mod:`~pytest_crmbench.agents.response_cache`): a reply stored
  under the hash of its full request is replayed — no request, ``model_calls`` 0, cost 0,
  ``cache_hits`` 1 and ``cache_saved_usd`` what it cost at today's prices.

The SDKs are imported only when a client is first needed.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pytest_crmbench.agents import endpoints
from pytest_crmbench.agents.base import AgentUnavailable, Briefing, ToolHandle, ToolResult, Usage
from pytest_crmbench.agents.endpoints import (
    CallContext,
    Limits,
    fingerprint,
    model_call,
    parse_retry_after,
)
from pytest_crmbench.agents.pricing import PriceTable, price_table
from pytest_crmbench.agents.response_cache import ResponseCache, open_cache

T = TypeVar("T")
ToolChoice = Literal["auto", "none"]

#: Environment variables whose values must never appear in any output.
SECRET_ENV_VARS = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "OPENAI_API_KEY",
    "OPENAI_ADMIN_KEY",
)
_KEY_LIKE = re.compile(r"\b(?:sk|pk|rk)[-_][A-Za-z0-9][A-Za-z0-9_\-]{5,}")
_BEARER = re.compile(r"(?i)\b(bearer|x-api-key|api[-_]key)([\"':=\s]+)[A-Za-z0-9._\-]{6,}")
#: A tool result longer than this is cut (the model is told) to protect the context window.
MAX_TOOL_RESULT_CHARS = 50_000


def redact(text: str, extra_secrets: Sequence[str | None] = ()) -> str:
    """``text`` without API keys: known secret values, then anything shaped like a key."""
    secrets = [os.environ.get(name) for name in SECRET_ENV_VARS] + list(extra_secrets)
    for secret in sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True):
        text = text.replace(secret, "[REDACTED]")
    text = _KEY_LIKE.sub("[REDACTED]", text)
    return _BEARER.sub(r"\1\2[REDACTED]", text)


def missing_key_message(env_var: str, agent: str) -> str:
    return (
        f"--agent {agent} needs an API key: {env_var} is not set. Export it "
        f"(export {env_var}=...), or benchmark without a model: --agent replay (the oracle) "
        f"or --agent noop."
    )


# == retries =========================================================================
@dataclass(frozen=True)
class RetryPolicy:
    """How hard one model call is tried. Worst case for one call: ``attempts`` ×
    (``sdk_max_retries`` + 1) HTTP requests, each bounded by the per-call timeout, and
    waits only while ``budget_s`` (counted from the first attempt) is not exceeded."""

    attempts: int = 3  # our attempts; each one includes the SDK's own retries
    sdk_max_retries: int = 2
    budget_s: float = 120.0
    base_delay_s: float = 1.0
    max_delay_s: float = 20.0
    # The SDK waits out a Retry-After up to this; a longer one comes back to us at once
    # (and we wait only if the budget allows).
    sdk_retry_after_cap_s: float = 10.0


@dataclass(frozen=True)
class Failure:
    """An API exception, classified: the reason to report and whether to retry."""

    reason: str
    transient: bool
    retry_after: float | None = None


def backoff_delay(
    attempt: int, policy: RetryPolicy, retry_after: float | None, rng: random.Random
) -> float:
    """Seconds before attempt ``attempt + 1``: Retry-After (+ up to 10 % jitter) when the
    server gave one, else exponential backoff with "equal jitter"."""
    if retry_after is not None and retry_after > 0:
        return retry_after * (1.0 + 0.1 * rng.random())
    ceiling = min(policy.max_delay_s, policy.base_delay_s * 2 ** (attempt - 1))
    return rng.uniform(ceiling / 2, ceiling)


def call_with_retries(
    fn: Callable[[], T],
    classify: Callable[[BaseException], Failure | None],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
    on_retry: Callable[[Failure, float], None] | None = None,
) -> T:
    """``fn()``, retried on transient failures within ``policy``; else AgentUnavailable.

    Exceptions ``classify`` does not recognise (returns None) propagate unchanged.
    """
    rng = rng or random.Random()
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:
            failure = classify(exc)
            if failure is None:
                raise
        elapsed = clock() - started
        if not failure.transient:
            raise AgentUnavailable(failure.reason) from None
        if attempt >= policy.attempts:
            raise AgentUnavailable(
                f"{failure.reason} (gave up after {attempt} attempts of up to "
                f"{policy.sdk_max_retries + 1} requests each, {elapsed:.1f} s)"
            ) from None
        delay = backoff_delay(attempt, policy, failure.retry_after, rng)
        if elapsed + delay > policy.budget_s:
            asked = (
                f"; the server asked to wait {failure.retry_after:g} s"
                if failure.retry_after
                else ""
            )
            raise AgentUnavailable(
                f"{failure.reason} (retry budget of {policy.budget_s:g} s exhausted after "
                f"{attempt} attempts{asked})"
            ) from None
        if on_retry is not None:
            on_retry(failure, delay)
        sleep(delay)


# == model replies ===================================================================
@dataclass
class ToolCall:
    """One tool call of the model; ``error`` is set when its arguments are unusable."""

    id: str
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    raw_args: Any = None  # what the model sent, for the history


TOKEN_KEYS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


@dataclass
class ModelReply:
    text: str
    calls: list[ToolCall]
    usage: Usage
    stop_reason: str | None = None


def parse_arguments(raw: Any) -> tuple[dict[str, Any], str | None]:
    """Tool arguments as an object, or the error to show the model."""
    if isinstance(raw, dict):
        return raw, None
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}, None
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            return {}, (
                f"Invalid tool arguments: not valid JSON ({exc.msg} at position {exc.pos}). "
                "Send the arguments as one JSON object."
            )
        if isinstance(value, dict):
            return value, None
        raw = value
    return {}, (
        f"Invalid tool arguments: expected a JSON object, got {type(raw).__name__}. "
        "Send the arguments as one JSON object."
    )


def tool_result_content(result: ToolResult) -> str:
    text = json.dumps(result.as_dict(), ensure_ascii=False, default=str)
    if len(text) > MAX_TOOL_RESULT_CHARS:
        cut = len(text) - MAX_TOOL_RESULT_CHARS
        text = text[:MAX_TOOL_RESULT_CHARS] + f"… [truncated {cut} characters; narrow the search]"
    return text


def add_usage(total: Usage, part: Usage) -> None:
    total.input_tokens += part.input_tokens
    total.output_tokens += part.output_tokens
    total.cache_read_tokens += part.cache_read_tokens
    total.cache_write_tokens += part.cache_write_tokens
    total.cost_usd += part.cost_usd
    total.model_calls += part.model_calls
    total.latency_s += part.latency_s
    total.retries += part.retries
    total.cache_hits += part.cache_hits
    total.cache_misses += part.cache_misses
    total.cache_saved_usd += part.cache_saved_usd


# == provider backends ===============================================================
class RequestBody:
    """A request's JSON body, its tool definitions encoded once per conversation.

    The tool list is the same object on every call of a conversation (and most of the
    bytes: 28 tool schemas); it is encoded again only when another list comes.
    """

    def __init__(self) -> None:
        self._tools: tuple[object, bytes] | None = None

    def encode(self, request: dict[str, Any]) -> bytes:
        tools = request.get("tools")
        rest = {k: v for k, v in request.items() if k != "tools"}
        head = json.dumps(rest, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if tools is None:
            return head
        if self._tools is None or self._tools[0] is not tools:
            encoded = json.dumps(tools, ensure_ascii=False, separators=(",", ":"))
            self._tools = (tools, encoded.encode("utf-8"))
        return head[:-1] + b',"tools":' + self._tools[1] + b"}"


class Backend(ABC):
    """One provider API: client, request format, replies, exception classification.

    The SDK client, the limits and the 429 pauses are shared by every backend of the
    process that talks to the same endpoint (see :mod:`~pytest_crmbench.agents.endpoints`);
    a backend itself holds only its settings, so one per conversation is cheap.
    """

    provider: str = ""
    key_env: str = ""
    base_url_env: str = ""
    default_model: str = ""
    sdk_module: str = ""  # the provider's SDK package (imported on first use, or by warm_up)

    def __init__(
        self,
        *,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        temperature: float | None = 0.0,
        max_tokens: int = 1024,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        prices: PriceTable | None = None,
        cache: bool = True,
        limits: Limits | None = None,
        cache_dir: str | None = None,
    ) -> None:
        self.model = model or self.default_model
        self.base_url = base_url or os.environ.get(self.base_url_env) or None
        self._api_key = api_key
        self.temperature = temperature
        self.max_tokens = int(max_tokens)
        self.timeout = float(timeout)
        self.retry = retry or RetryPolicy()
        self.prices = prices or price_table()
        self.cache = cache
        self.limits = limits or Limits()
        self.cache_dir = cache_dir
        self.responses: ResponseCache | None = open_cache(cache_dir) if cache_dir else None
        self._http: Any = None
        self._rng = random.Random()
        self._body = RequestBody()
        self.http_requests = 0  # every HTTP request sent (SDK retries included)

    # -- readiness and client ----------------------------------------------------------
    def has_key(self) -> bool:
        return bool(self._api_key or os.environ.get(self.key_env))

    def check_ready(self, agent_name: str) -> None:
        """Raise AgentUnavailable with a clear message when no key is configured."""
        if not self.has_key():
            raise AgentUnavailable(missing_key_message(self.key_env, agent_name))

    def secrets(self) -> list[str | None]:
        """Every credential this backend may send: kept out of keys, caches and messages."""
        return [self._api_key, *(os.environ.get(name) for name in SECRET_ENV_VARS)]

    def client_key(self) -> tuple[Any, ...]:
        """What makes two backends share one SDK client (credentials only as a digest)."""
        return (
            self.provider,
            self.base_url or "",
            fingerprint(*self.secrets()),
            self.timeout,
            self.retry.sdk_max_retries,
        )

    @property
    def client(self) -> Any:
        """The process's SDK client for this endpoint and these credentials."""
        return endpoints.shared_client(self.client_key(), self._make_client)

    @abstractmethod
    def _make_client(self) -> Any: ...

    @property
    def endpoint(self) -> endpoints.Endpoint:
        return endpoints.endpoint(self.provider, self.base_url)

    def http_hooks(self) -> dict[str, list[Callable[[Any], None]]]:
        """The shared client's event hooks: limits and pauses of this endpoint."""
        return endpoints.hooks_for(self.endpoint)

    def close(self) -> None:
        """Nothing to release: the client is shared (closed at the end of the process by
        :func:`~pytest_crmbench.agents.endpoints.close_shared_clients`)."""
        return None

    def public_settings(self) -> dict[str, Any]:
        """What may be reported (never the key)."""
        return {
            "provider": self.provider,
            "model": self.model,
            "base_url": self.base_url,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "timeout": self.timeout,
            "retry": {
                "attempts": self.retry.attempts,
                "sdk_max_retries": self.retry.sdk_max_retries,
                "budget_s": self.retry.budget_s,
            },
            "limits": {
                "rpm": self.limits.rpm,
                "tpm": self.limits.tpm,
                "max_connections": self.limits.max_connections,
            },
            "response_cache": self.cache_dir,
        }

    # -- one model call ----------------------------------------------------------------
    @abstractmethod
    def build_request(
        self,
        system: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        tool_choice: ToolChoice,
    ) -> dict[str, Any]:
        """The SDK call's keyword arguments: the full request (no credentials), which is
        also what the response cache is keyed on."""

    @abstractmethod
    def _send(self, request: dict[str, Any]) -> Any:
        """Send one request through the SDK (no retries of our own)."""

    @abstractmethod
    def _parse(self, raw: Any) -> ModelReply:
        """The SDK's response as a :class:`ModelReply` (usage as the API reported it)."""

    @abstractmethod
    def classify(self, exc: BaseException) -> Failure | None:
        """Classify an SDK exception (None: not an API failure)."""

    def complete(
        self,
        system: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        tool_choice: ToolChoice = "auto",
    ) -> ModelReply:
        """One model call with retries; usage carries tokens, cost, latency, retries.

        With a response cache: a stored reply is replayed (no request, no cost) and a new
        one is stored."""
        started = time.perf_counter()
        request = self.build_request(system, messages, tools, tool_choice)
        key = self.responses.key(self.provider, request) if self.responses else None
        if self.responses is not None and key is not None:
            replayed = self._replay(self.responses.get(key))
            if replayed is not None:
                replayed.usage.latency_s = time.perf_counter() - started
                return replayed
        try:  # built (and the SDK imported) outside the timing
            self.client  # noqa: B018
        except Exception as exc:
            what = f"cannot set up the {self.provider} client"
            raise AgentUnavailable(self.reason(what, exc)) from None
        started = time.perf_counter()
        limiter = endpoints.limiter(self.provider, self.base_url, self.model, self.limits)
        call = CallContext(
            limiter=limiter,
            deadline=time.monotonic() + self.retry.budget_s,
            retry_after_cap_s=self.retry.sdk_retry_after_cap_s,
        )
        try:
            with model_call(call):
                raw = call_with_retries(
                    lambda: self._attempt(call, request), self.classify, self.retry, rng=self._rng
                )
        finally:
            self.http_requests += call.requests
        reply = self._parse(raw)
        usage = reply.usage
        usage.model_calls = 1
        usage.latency_s = time.perf_counter() - started
        usage.retries = max(0, call.requests - 1)
        usage.cost_usd = self.cost(usage)
        if limiter is not None and limiter.tpm is not None:  # the estimate → what was used
            used = usage.input_tokens + usage.cache_write_tokens + usage.output_tokens
            limiter.tpm.adjust(used - call.estimate)
        if self.responses is not None and key is not None:
            usage.cache_misses = 1
            self.responses.put(key, self._entry(reply), self.secrets())
        return reply

    def _attempt(self, call: CallContext, request: dict[str, Any]) -> Any:
        """One attempt of ours (the SDK may retry inside it) — not when the endpoint is
        paused for longer than the retry budget has left."""
        paused = self.endpoint.remaining()
        left = (call.deadline or 0.0) - time.monotonic()
        if paused > 0 and paused > left:
            raise AgentUnavailable(
                f"{self.provider} API rate limited: the endpoint asked every caller to wait "
                f"{paused:.1f} s more, beyond the retry budget ({self.retry.budget_s:g} s)"
            )
        try:
            return self._send(request)
        finally:
            call.release()  # a request that failed without an answer frees its slot

    # -- the response cache ------------------------------------------------------------
    def _entry(self, reply: ModelReply) -> dict[str, Any]:
        u = reply.usage
        return {
            "provider": self.provider,
            "model": self.model,
            "reply": {
                "text": reply.text,
                "calls": [
                    {
                        "id": c.id,
                        "name": c.name,
                        "args": c.args,
                        "error": c.error,
                        "raw_args": c.raw_args,
                    }
                    for c in reply.calls
                ],
                "usage": {
                    "input_tokens": u.input_tokens,
                    "output_tokens": u.output_tokens,
                    "cache_read_tokens": u.cache_read_tokens,
                    "cache_write_tokens": u.cache_write_tokens,
                },
                "stop_reason": reply.stop_reason,
            },
        }

    def _replay(self, entry: dict[str, Any] | None) -> ModelReply | None:
        """A stored reply as a fresh ModelReply (None when the entry is not usable)."""
        if entry is None:
            return None
        try:
            data = entry["reply"]
            calls = [
                ToolCall(
                    str(c["id"]), str(c["name"]), dict(c["args"]), c["error"], c.get("raw_args")
                )
                for c in data["calls"]
            ]
            recorded = {k: int(data["usage"][k]) for k in TOKEN_KEYS}
            text = str(data["text"])
            stop = data.get("stop_reason")
        except (KeyError, TypeError, ValueError):
            return None
        usage = Usage(**recorded, cache_hits=1)
        usage.cache_saved_usd = self.cost(usage)
        return ModelReply(text, calls, usage, None if stop is None else str(stop))

    @abstractmethod
    def cost(self, usage: Usage) -> float: ...

    def status_failure(
        self, api: str, status: int, overflow: bool, overloaded: int, exc: Any
    ) -> Failure:
        """An HTTP error status as a Failure: 408/409/429/5xx are transient (with the
        server's Retry-After), a context overflow and other statuses are not."""
        if status in (400, 413) and overflow:
            return Failure(self.reason("context window exceeded", exc), False)
        transient = status in (408, 409, 429) or status >= 500
        what = {429: "rate limited", overloaded: "overloaded"}.get(status, "error")
        return Failure(
            self.reason(f"{api} {what} (HTTP {status})", exc),
            transient,
            parse_retry_after(exc.response.headers) if transient else None,
        )

    def reason(self, what: str, exc: BaseException) -> str:
        """A redacted one-line reason for an SDK exception."""
        text = " ".join(str(exc).split())
        if len(text) > 300:
            text = text[:300] + "…"
        where = f" from {self.base_url}" if self.base_url else ""
        return redact(f"{what}{where}: {text}", [self._api_key])

    # -- history -----------------------------------------------------------------------
    @abstractmethod
    def tool_definitions(self, catalog: list[dict[str, Any]]) -> list[dict[str, Any]]: ...

    @abstractmethod
    def add_user(self, history: list[dict[str, Any]], text: str) -> None: ...

    @abstractmethod
    def add_assistant(self, history: list[dict[str, Any]], reply: ModelReply) -> None: ...

    @abstractmethod
    def add_tool_results(
        self, history: list[dict[str, Any]], calls: list[ToolCall], results: list[ToolResult]
    ) -> None: ...


# == the agent =======================================================================
LIMIT_NOTE = "Not executed: no more tool calls are allowed in this turn. Answer the user now."


class LLMAgent:
    """An agent driven by a model API; subclasses name the backend and defaults."""

    name = "llm"
    backend_class: type[Backend]

    @classmethod
    def warm_up(cls) -> None:
        """Import the provider's SDK now: it takes seconds (thousands of generated
        models), and a run would otherwise pay them after its stores are ready, before
        its first model call (see :func:`~pytest_crmbench.agents.loading.warm_up`)."""
        if cls.backend_class.sdk_module:
            importlib.import_module(cls.backend_class.sdk_module)

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        temperature: float | None = 0.0,
        max_tokens: int | None = 1024,
        timeout: float | None = 60.0,
        *,
        api_key: str | None = None,
        max_model_calls: int = 12,
        retry: RetryPolicy | None = None,
        prices: PriceTable | None = None,
        cache: bool = True,
        rpm: int | None = None,
        tpm: int | None = None,
        max_connections: int | None = None,
        cache_dir: str | None = None,
    ) -> None:
        if max_model_calls < 1:
            raise ValueError("max_model_calls must be at least 1")
        self.backend = self.backend_class(
            model=model,
            base_url=base_url,
            api_key=api_key,
            temperature=temperature,
            max_tokens=1024 if max_tokens is None else max_tokens,
            timeout=60.0 if timeout is None else timeout,
            retry=retry,
            prices=prices,
            cache=cache,
            limits=Limits(rpm, tpm, max_connections),
            cache_dir=cache_dir,
        )
        self.max_model_calls = max_model_calls
        self._system = ""
        self._tools: list[dict[str, Any]] = []
        self._history: list[dict[str, Any]] = []
        self._usage = Usage()

    # -- configuration -----------------------------------------------------------------
    @property
    def model(self) -> str:
        return self.backend.model

    @property
    def provider(self) -> str:
        return self.backend.provider

    @property
    def base_url(self) -> str | None:
        return self.backend.base_url

    @property
    def prices(self) -> PriceTable:
        return self.backend.prices

    @prices.setter
    def prices(self, table: PriceTable) -> None:
        self.backend.prices = table

    def check_ready(self) -> None:
        """Called by the plugin before any item runs: a missing key is a usage error."""
        self.backend.check_ready(self.name)

    def public_settings(self) -> dict[str, Any]:
        return {**self.backend.public_settings(), "max_model_calls": self.max_model_calls}

    # -- the protocol ------------------------------------------------------------------
    def start(self, briefing: Briefing) -> None:
        self._system = briefing.system_prompt
        self._tools = self.backend.tool_definitions(list(briefing.tools))
        self._history = []
        self._usage = Usage()

    def respond(self, message: str, tools: ToolHandle) -> str:
        usage = Usage()
        self._usage = usage
        backend = self.backend
        backend.add_user(self._history, message)
        wrap_up = False
        for step in range(self.max_model_calls):
            last = wrap_up or step == self.max_model_calls - 1
            reply = backend.complete(
                self._system, self._history, self._tools or None, "none" if last else "auto"
            )
            add_usage(usage, reply.usage)
            backend.add_assistant(self._history, reply)
            if not reply.calls:
                return reply.text
            results: list[ToolResult] = []
            for call in reply.calls:
                if last:
                    results.append(ToolResult(False, error=LIMIT_NOTE))
                elif call.error is not None:
                    results.append(ToolResult(False, error=call.error))
                else:
                    results.append(tools.call(call.name, call.args))
            backend.add_tool_results(self._history, reply.calls, results)
            if last:
                return reply.text
            if getattr(tools, "limit_hit", False):
                wrap_up = True
        return ""  # pragma: no cover (the last step always returns)

    def last_usage(self) -> Usage:
        return self._usage

    def close(self) -> None:
        self.backend.close()
