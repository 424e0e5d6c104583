"""``--agent openai``: Chat Completions with function calling — OpenAI or any compatible server.

Settings (``make_agent`` passes the ``--agent-*`` options): ``model`` (default
``gpt-4.1``), ``base_url`` (else ``OPENAI_BASE_URL``, else api.openai.com; point it at
vLLM, Ollama, LM Studio… e.g. ``http://localhost:11434/v1``), ``temperature`` (default
0), ``max_tokens``, ``timeout`` (per HTTP request). The key comes from ``OPENAI_API_KEY``;
with a custom base URL and no key a placeholder is sent, since local servers ignore it.

On api.openai.com the output bound is sent as ``max_completion_tokens``; on other servers
as ``max_tokens``, which compatible servers understand. Prompt caching is automatic on
OpenAI: the cached part of the prompt is recorded (``prompt_tokens_details.cached_tokens``).
"""

from __future__ import annotations

import json
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

PLACEHOLDER_KEY = "no-key-needed"  # sent to custom base URLs when OPENAI_API_KEY is unset


def _is_openai_host(base_url: str | None) -> bool:
    return base_url is None or "api.openai.com" in base_url


class OpenAIBackend(Backend):
    provider = "openai"
    sdk_module = "openai"
    key_env = "OPENAI_API_KEY"
    base_url_env = "OPENAI_BASE_URL"
    default_model = "gpt-4.1"
    parallel_tool_calls: bool | None = True

    def has_key(self) -> bool:
        return super().has_key() or not _is_openai_host(self.base_url)

    def _make_client(self) -> Any:
        import os

        import openai

        self._http = openai.DefaultHttpxClient(event_hooks=self.http_hooks())
        kwargs: dict[str, Any] = {
            "max_retries": self.retry.sdk_max_retries,
            "timeout": self.timeout,
            "http_client": self._http,
        }
        key = self._api_key or os.environ.get(self.key_env)
        if not key and not _is_openai_host(self.base_url):
            key = PLACEHOLDER_KEY
        if key:
            kwargs["api_key"] = key
        if self.base_url:
            kwargs["base_url"] = self.base_url
        return openai.OpenAI(**kwargs)

    def public_settings(self) -> dict[str, Any]:
        return {**super().public_settings(), "parallel_tool_calls": self.parallel_tool_calls}

    # -- requests ----------------------------------------------------------------------
    def tool_definitions(self, catalog: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {
                "type": "function",
                "function": {
                    "name": t["name"],
                    "description": t["description"],
                    "parameters": t["input_schema"],
                },
            }
            for t in catalog
        ]

    def build_request(
        self,
        system: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        tool_choice: ToolChoice,
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, *messages],
        }
        if _is_openai_host(self.base_url):
            kwargs["max_completion_tokens"] = self.max_tokens
        else:
            kwargs["max_tokens"] = self.max_tokens
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if tools:
            kwargs["tools"] = tools
            kwargs["tool_choice"] = tool_choice
            if self.parallel_tool_calls is not None and tool_choice != "none":
                kwargs["parallel_tool_calls"] = self.parallel_tool_calls
        return kwargs

    def _send(self, request: dict[str, Any]) -> Any:
        return self.client.chat.completions.create(**request)

    def _parse(self, raw: Any) -> ModelReply:
        choices = raw.choices or []
        message = choices[0].message if choices else None
        calls: list[ToolCall] = []
        for tc in (getattr(message, "tool_calls", None) or []) if message else []:
            function = getattr(tc, "function", None)
            if function is None:  # a custom (non-function) tool call: not ours
                calls.append(
                    ToolCall(str(tc.id), str(getattr(tc, "type", "?")), {}, "Unknown tool.")
                )
                continue
            args, error = parse_arguments(function.arguments)
            calls.append(
                ToolCall(str(tc.id), str(function.name), args, error, raw_args=function.arguments)
            )
        u = raw.usage
        details = getattr(u, "prompt_tokens_details", None) if u is not None else None
        usage = Usage(
            input_tokens=int(getattr(u, "prompt_tokens", 0) or 0),
            output_tokens=int(getattr(u, "completion_tokens", 0) or 0),
            cache_read_tokens=int(getattr(details, "cached_tokens", 0) or 0),
            cache_write_tokens=int(getattr(details, "cache_write_tokens", 0) or 0),
        )
        text = (getattr(message, "content", None) or "") if message else ""
        finish = choices[0].finish_reason if choices else None
        return ModelReply(str(text).strip(), calls, usage, finish)

    def cost(self, usage: Usage) -> float:
        return self.prices.cost(
            self.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            input_includes_cache=True,
        )

    def classify(self, exc: BaseException) -> Failure | None:
        import openai

        name = "OpenAI API" if _is_openai_host(self.base_url) else "model server"
        if isinstance(exc, openai.APITimeoutError):
            return Failure(
                self.reason(f"{name} timed out (per-call timeout {self.timeout:g} s)", exc), True
            )
        if isinstance(exc, openai.APIConnectionError):
            return Failure(self.reason(f"cannot reach the {name}", exc), True)
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return Failure(
                self.reason(
                    f"{name} refused the credentials (HTTP {exc.status_code}; "
                    f"check {self.key_env})",
                    exc,
                ),
                False,
            )
        if isinstance(exc, openai.APIStatusError):
            code = str(getattr(exc, "code", None) or "")
            overflow = code == "context_length_exceeded" or _is_context_overflow(str(exc))
            return self.status_failure(name, exc.status_code, overflow, 503, exc)
        if isinstance(exc, openai.OpenAIError):
            return Failure(self.reason("OpenAI SDK error", exc), False)
        return None

    # -- history -----------------------------------------------------------------------
    def add_user(self, history: list[dict[str, Any]], text: str) -> None:
        history.append({"role": "user", "content": text})

    def add_assistant(self, history: list[dict[str, Any]], reply: ModelReply) -> None:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        if reply.calls:
            message["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": _arguments_text(c)},
                }
                for c in reply.calls
            ]
        elif not reply.text:
            message["content"] = ""
        history.append(message)

    def add_tool_results(
        self, history: list[dict[str, Any]], calls: list[ToolCall], results: list[ToolResult]
    ) -> None:
        for call, result in zip(calls, results, strict=True):
            history.append(
                {"role": "tool", "tool_call_id": call.id, "content": tool_result_content(result)}
            )


def _arguments_text(call: ToolCall) -> str:
    if isinstance(call.raw_args, str):
        return call.raw_args
    return json.dumps(call.args, ensure_ascii=False)


def _is_context_overflow(message: str) -> bool:
    text = message.lower()
    return any(
        s in text for s in ("maximum context length", "context_length_exceeded", "context window")
    )


class OpenAIAgent(LLMAgent):
    """A Chat Completions model with function calling (OpenAI or a compatible server)."""

    name = "openai"
    backend_class = OpenAIBackend
