"""``--agent claude``: the Anthropic Messages API with native tool use.

Settings (``make_agent`` passes the ``--agent-*`` options): ``model`` (default
``claude-sonnet-4-5``), ``base_url`` (else ``ANTHROPIC_BASE_URL``, else the SDK's default),
``max_tokens``, ``timeout`` (per HTTP request); the key comes from ``ANTHROPIC_API_KEY``
(or ``ANTHROPIC_AUTH_TOKEN``). ``temperature`` is accepted but not sent: the API version
of the 2.x SDK rejects sampling parameters.

Prompt caching: a ``cache_control`` breakpoint on the system prompt (which caches the
tool definitions before it too) and the top-level automatic breakpoint, so the growing
conversation is read from the cache on each step of the tool loop. Cache reads and
writes are recorded as the API reports them.
"""

from __future__ import annotations

from typing import Any

from pytest_crmbench.agents.base import ToolResult, Usage
from pytest_crmbench.agents.llm import (
    Backend,
    Failure,
    LLMAgent,
    ModelReply,
    ToolCall,
    ToolChoice,
    parse_arguments,
    tool_result_content,
)

EPHEMERAL = {"type": "ephemeral"}


class AnthropicBackend(Backend):
    provider = "anthropic"
    sdk_module = "anthropic"
    key_env = "ANTHROPIC_API_KEY"
    base_url_env = "ANTHROPIC_BASE_URL"
    default_model = "claude-sonnet-4-5"
    _deprecation_shown = False

    def has_key(self) -> bool:
        import os

        return super().has_key() or any(
            os.environ.get(v) for v in ("ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_PROFILE")
        )

    def _make_client(self) -> Any:
        import anthropic

        self._http = anthropic.DefaultHttpxClient(event_hooks=self.http_hooks())
        kwargs: dict[str, Any] = {
            "max_retries": self.retry.sdk_max_retries,
            "timeout": self.timeout,
            "http_client": self._http,
        }
        if self._api_key:
            kwargs["api_key"] = self._api_key
        if self.base_url:
            kwargs["base_url"] = self.base_url
        return anthropic.Anthropic(**kwargs)

    def public_settings(self) -> dict[str, Any]:
        # Not sent (see the module docstring): report what the model really got.
        return {**super().public_settings(), "temperature": None, "prompt_caching": self.cache}

    # -- requests ----------------------------------------------------------------------
    def tool_definitions(self, catalog: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {"name": t["name"], "description": t["description"], "input_schema": t["input_schema"]}
            for t in catalog
        ]

    def build_request(
        self,
        system: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        tool_choice: ToolChoice,
    ) -> dict[str, Any]:
        block: dict[str, Any] = {"type": "text", "text": system}
        if self.cache:
            block["cache_control"] = EPHEMERAL
        kwargs: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": [block],
            "messages": messages,
        }
        if tools:
            kwargs["tools"] = tools
            kwargs["tool_choice"] = {"type": tool_choice}
        if self.cache:
            kwargs["cache_control"] = EPHEMERAL
        return kwargs

    def _send(self, request: dict[str, Any]) -> Any:
        if not AnthropicBackend._deprecation_shown:
            # The process's first call goes through messages.create: the SDK's own
            # checks, and its warning for a retiring model (on every call: once is enough).
            AnthropicBackend._deprecation_shown = True
            return self.client.messages.create(**request)
        # Later calls send the same request already encoded, through the same client
        # (headers, auth, the SDK's retries, its Message parsing): messages.create first
        # copies the whole request, 28 tool schemas included, into new dicts — ~1 ms of
        # CPU per call, during which no other conversation in flight of the process runs.
        import anthropic  # lazy: the SDK, imported with the client

        body = self._body.encode(request)
        return self.client.post("/v1/messages", cast_to=anthropic.types.Message, content=body)

    def _parse(self, raw: Any) -> ModelReply:
        texts: list[str] = []
        calls: list[ToolCall] = []
        for block in raw.content or []:
            kind = getattr(block, "type", None)
            if kind == "text":
                texts.append(block.text or "")
            elif kind == "tool_use":
                raw_input = getattr(block, "input", None)
                args, error = parse_arguments(raw_input)
                calls.append(
                    ToolCall(str(block.id), str(block.name), args, error, raw_args=raw_input)
                )
        u = raw.usage
        usage = Usage(
            input_tokens=int(getattr(u, "input_tokens", 0) or 0),
            output_tokens=int(getattr(u, "output_tokens", 0) or 0),
            cache_read_tokens=int(getattr(u, "cache_read_input_tokens", 0) or 0),
            cache_write_tokens=int(getattr(u, "cache_creation_input_tokens", 0) or 0),
        )
        return ModelReply("".join(texts).strip(), calls, usage, getattr(raw, "stop_reason", None))

    def cost(self, usage: Usage) -> float:
        return self.prices.cost(
            self.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
        )

    def classify(self, exc: BaseException) -> Failure | None:
        import anthropic

        if isinstance(exc, anthropic.APITimeoutError):
            return Failure(
                self.reason(f"Anthropic API timed out (per-call timeout {self.timeout:g} s)", exc),
                True,
            )
        if isinstance(exc, anthropic.APIConnectionError):
            return Failure(self.reason("cannot reach the Anthropic API", exc), True)
        if isinstance(exc, anthropic.AuthenticationError | anthropic.PermissionDeniedError):
            return Failure(
                self.reason(
                    f"Anthropic API refused the credentials (HTTP {exc.status_code}; "
                    f"check {self.key_env})",
                    exc,
                ),
                False,
            )
        if isinstance(exc, anthropic.APIStatusError):
            message = str(getattr(exc, "api_message", None) or exc)
            overflow = _is_context_overflow(message)
            return self.status_failure("Anthropic API", exc.status_code, overflow, 529, exc)
        if isinstance(exc, anthropic.AnthropicError):
            return Failure(self.reason("Anthropic SDK error", exc), False)
        return None

    # -- history -----------------------------------------------------------------------
    def add_user(self, history: list[dict[str, Any]], text: str) -> None:
        if history and history[-1]["role"] == "user":
            # After tool results that ended a turn: one user message (roles alternate).
            history[-1]["content"].append({"type": "text", "text": text})
        else:
            history.append({"role": "user", "content": [{"type": "text", "text": text}]})

    def add_assistant(self, history: list[dict[str, Any]], reply: ModelReply) -> None:
        content: list[dict[str, Any]] = []
        if reply.text:
            content.append({"type": "text", "text": reply.text})
        for call in reply.calls:
            shown = call.raw_args if isinstance(call.raw_args, dict) else {}
            content.append({"type": "tool_use", "id": call.id, "name": call.name, "input": shown})
        if not content:
            content.append({"type": "text", "text": "(no reply)"})
        history.append({"role": "assistant", "content": content})

    def add_tool_results(
        self, history: list[dict[str, Any]], calls: list[ToolCall], results: list[ToolResult]
    ) -> None:
        blocks = [
            {
                "type": "tool_result",
                "tool_use_id": call.id,
                "content": tool_result_content(result),
                **({} if result.ok else {"is_error": True}),
            }
            for call, result in zip(calls, results, strict=True)
        ]
        history.append({"role": "user", "content": blocks})


def _is_context_overflow(message: str) -> bool:
    text = message.lower()
    return any(
        s in text
        for s in ("prompt is too long", "context window", "context length", "too many tokens")
    )


class ClaudeAgent(LLMAgent):
    """Claude through the Messages API, tools passed natively."""

    name = "claude"
    backend_class = AnthropicBackend
