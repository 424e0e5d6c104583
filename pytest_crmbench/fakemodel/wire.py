"""The two wire formats the fake server speaks, reduced to one neutral form and back.

* Anthropic Messages: ``POST …/v1/messages`` (system, tools, content blocks, tool_use /
  tool_result, usage with cache reads/writes);
* OpenAI Chat Completions: ``POST …/v1/chat/completions`` (system message, function
  tools, tool_calls with JSON-string arguments, tool messages, usage with cached tokens).

Token counts are deterministic: one token per 4 characters of the canonical JSON of the
request's parts (tools + system = the cacheable prefix; messages = the rest) and of the
reply's content.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

Api = Literal["anthropic", "openai"]


@dataclass
class FakeCall:
    """A tool call; ``args`` is an object, or a raw string (e.g. malformed JSON)."""

    id: str
    name: str
    args: Any = field(default_factory=dict)


@dataclass
class FakeMessage:
    role: Literal["user", "assistant", "tool"]
    text: str = ""
    calls: list[FakeCall] = field(default_factory=list)
    tool_call_id: str | None = None
    is_error: bool = False


@dataclass
class FakeRequest:
    """One request in neutral form, with the raw body for whoever needs more."""

    api: Api
    model: str
    system: str
    tools: list[str]
    messages: list[FakeMessage]
    tool_choice: str  # auto | none | any | required | tool
    cache_marked: bool
    body: dict[str, Any]

    def user_texts(self) -> list[str]:
        return [m.text for m in self.messages if m.role == "user"]

    def last_user_text(self) -> str:
        texts = self.user_texts()
        return texts[-1] if texts else ""

    @property
    def can_call_tools(self) -> bool:
        return bool(self.tools) and self.tool_choice != "none"


@dataclass
class FakeReply:
    text: str = ""
    calls: list[FakeCall] = field(default_factory=list)


def tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4)) if text else 0


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(b.get("text", "")) for b in content if isinstance(b, dict) and "text" in b
        )
    return "" if content is None else str(content)


def _has_cache_control(items: Any) -> bool:
    return isinstance(items, list) and any(
        isinstance(x, dict) and x.get("cache_control") for x in items
    )


# == parsing =========================================================================
def parse_anthropic(body: dict[str, Any]) -> FakeRequest:
    system_raw = body.get("system") or ""
    system = _text_of(system_raw)
    tools_raw = body.get("tools") or []
    messages: list[FakeMessage] = []
    for msg in body.get("messages") or []:
        role = msg.get("role")
        content = msg.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        if role == "user":
            for b in blocks:
                if b.get("type") == "tool_result":
                    messages.append(
                        FakeMessage(
                            "tool",
                            _text_of(b.get("content")),
                            tool_call_id=b.get("tool_use_id"),
                            is_error=bool(b.get("is_error")),
                        )
                    )
                elif b.get("type") == "text":
                    messages.append(FakeMessage("user", str(b.get("text", ""))))
        elif role == "assistant":
            text = "".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")
            calls = [
                FakeCall(str(b.get("id")), str(b.get("name")), b.get("input"))
                for b in blocks
                if b.get("type") == "tool_use"
            ]
            messages.append(FakeMessage("assistant", text, calls))
    choice = body.get("tool_choice") or {}
    return FakeRequest(
        api="anthropic",
        model=str(body.get("model", "")),
        system=system,
        tools=[str(t.get("name")) for t in tools_raw if isinstance(t, dict)],
        messages=messages,
        tool_choice=str(choice.get("type", "auto")) if isinstance(choice, dict) else "auto",
        cache_marked=bool(
            body.get("cache_control")
            or _has_cache_control(system_raw)
            or _has_cache_control(tools_raw)
        ),
        body=body,
    )


def parse_openai(body: dict[str, Any]) -> FakeRequest:
    system_parts: list[str] = []
    messages: list[FakeMessage] = []
    for msg in body.get("messages") or []:
        role = msg.get("role")
        if role in ("system", "developer"):
            system_parts.append(_text_of(msg.get("content")))
        elif role == "user":
            messages.append(FakeMessage("user", _text_of(msg.get("content"))))
        elif role == "assistant":
            calls = []
            for tc in msg.get("tool_calls") or []:
                fn = tc.get("function") or {}
                raw = fn.get("arguments")
                try:
                    args = json.loads(raw) if isinstance(raw, str) else raw
                except json.JSONDecodeError:
                    args = raw
                calls.append(FakeCall(str(tc.get("id")), str(fn.get("name")), args))
            messages.append(FakeMessage("assistant", _text_of(msg.get("content")), calls))
        elif role == "tool":
            messages.append(
                FakeMessage(
                    "tool", _text_of(msg.get("content")), tool_call_id=msg.get("tool_call_id")
                )
            )
    choice = body.get("tool_choice", "auto")
    if isinstance(choice, dict):
        choice = "tool"
    tools = [
        str((t.get("function") or {}).get("name"))
        for t in body.get("tools") or []
        if isinstance(t, dict)
    ]
    return FakeRequest(
        api="openai",
        model=str(body.get("model", "")),
        system="\n".join(system_parts),
        tools=tools,
        messages=messages,
        tool_choice=str(choice),
        cache_marked=True,  # OpenAI caches automatically
        body=body,
    )


# == usage and rendering =============================================================
@dataclass(frozen=True)
class PromptSize:
    prefix: int  # tools + system
    rest: int  # messages
    prefix_key: str

    @property
    def total(self) -> int:
        return self.prefix + self.rest


def prompt_size(req: FakeRequest) -> PromptSize:
    body = req.body
    if req.api == "anthropic":
        prefix_text = canonical([body.get("tools") or [], body.get("system") or ""])
        rest_text = canonical(body.get("messages") or [])
    else:
        msgs = body.get("messages") or []
        system = [m for m in msgs if m.get("role") in ("system", "developer")]
        others = [m for m in msgs if m.get("role") not in ("system", "developer")]
        prefix_text = canonical([body.get("tools") or [], system])
        rest_text = canonical(others)
    key = hashlib.sha256(f"{req.api}|{req.model}|{prefix_text}".encode()).hexdigest()
    return PromptSize(tokens(prefix_text), tokens(rest_text), key)


def _call_args_text(call: FakeCall) -> str:
    return call.args if isinstance(call.args, str) else canonical(call.args)


def render_anthropic(
    req: FakeRequest, reply: FakeReply, msg_id: str, cache_read: int, cache_write: int, rest: int
) -> tuple[dict[str, Any], dict[str, int]]:
    content: list[dict[str, Any]] = []
    if reply.text:
        content.append({"type": "text", "text": reply.text})
    for call in reply.calls:
        content.append({"type": "tool_use", "id": call.id, "name": call.name, "input": call.args})
    output = tokens(canonical(content))
    usage = {
        "input_tokens": rest,
        "output_tokens": output,
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
    }
    body = {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": req.model,
        "content": content,
        "stop_reason": "tool_use" if reply.calls else "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }
    normalised = {
        "input_tokens": rest,
        "output_tokens": output,
        "cache_read_tokens": cache_read,
        "cache_write_tokens": cache_write,
    }
    return body, normalised


def render_openai(
    req: FakeRequest, reply: FakeReply, msg_id: str, prompt: int, cached: int
) -> tuple[dict[str, Any], dict[str, int]]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.calls:
        message["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": _call_args_text(c)},
            }
            for c in reply.calls
        ]
    output = tokens(canonical(message))
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt + output,
        "prompt_tokens_details": {"cached_tokens": cached},
    }
    body = {
        "id": msg_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if reply.calls else "stop",
                "logprobs": None,
            }
        ],
        "usage": usage,
    }
    normalised = {
        "input_tokens": prompt,
        "output_tokens": output,
        "cache_read_tokens": cached,
        "cache_write_tokens": 0,
    }
    return body, normalised


def error_body(api: Api, status: int, kind: str, message: str) -> dict[str, Any]:
    if api == "anthropic":
        return {"type": "error", "error": {"type": kind, "message": message}}
    code = "context_length_exceeded" if kind == "context_length_exceeded" else None
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
