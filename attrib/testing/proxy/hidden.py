"""The hidden system prompt: put it into chat and completion requests, and hide it from completion answers.

See :mod:`attrib.testing.proxy` for what the caller sees.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["inject_chat", "inject_completion", "hide_prefix"]

_ALIGNED = ("tokens", "token_logprobs", "top_logprobs", "text_offset")


def json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def dump(value: Any) -> bytes:
    """``value`` as UTF-8 JSON."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def inject_chat(body: bytes, system: str) -> bytes:
    """Insert the hidden system message first; a body without a messages list is left as is."""
    request = json_object(body)
    if request is None or not isinstance(request.get("messages"), list):
        return body
    request["messages"] = [{"role": "system", "content": system}, *request["messages"]]
    return dump(request)


def inject_completion(body: bytes, prefix: str) -> tuple[bytes, bool, bool]:
    """Prefix the prompt (or each prompt of a list); returns (body, whether injected, whether echo was asked)."""
    request = json_object(body)
    if request is None:
        return body, False, False
    prompt = request.get("prompt")
    if isinstance(prompt, str):
        request["prompt"] = prefix + prompt
    elif isinstance(prompt, list) and prompt and all(isinstance(item, str) for item in prompt):
        request["prompt"] = [prefix + item for item in prompt]
    else:
        return body, False, False
    return dump(request), True, bool(request.get("echo"))


def hide_prefix(body: bytes, prefix: str, echo: bool) -> bytes:
    """Rewrite a completion answer so the injected prefix does not show.

    With echo, each choice's ``text`` loses the prefix, and in ``logprobs`` the tokens
    whose ``text_offset`` (characters) is inside the prefix are dropped from the four
    aligned lists (tokens, token_logprobs, top_logprobs, text_offset); the remaining
    offsets move back by ``len(prefix)``, so they start at 0 on the caller's prompt. The
    kept log-probabilities are the real ones, conditioned on the hidden prefix, which is
    what an audit wants to see (the caller's first token then has a value, not None).
    A token straddling the boundary is dropped with the prefix, and an echo that does
    not reproduce the prefix exactly keeps its text.

    Without echo the text is generated text only; offsets that count the prompt (as
    llama-cpp-python's server does) move back by ``len(prefix)``, offsets that do not are
    left alone. ``usage`` is not changed: its token counts include the prefix.
    """
    response = json_object(body)
    if response is None or not isinstance(response.get("choices"), list):
        return body
    cut = len(prefix)
    for choice in response["choices"]:
        if not isinstance(choice, dict):
            continue
        text = choice.get("text")
        if echo and isinstance(text, str) and text.startswith(prefix):
            choice["text"] = text[cut:]
        logprobs = choice.get("logprobs")
        if not isinstance(logprobs, dict):
            continue
        offsets = logprobs.get("text_offset")
        if not isinstance(offsets, list) or not all(isinstance(offset, int) for offset in offsets):
            continue
        if echo:
            keep = [i for i, offset in enumerate(offsets) if offset >= cut]
            for key in _ALIGNED:
                column = logprobs.get(key)
                if isinstance(column, list) and len(column) == len(offsets):
                    logprobs[key] = [column[i] for i in keep]
            logprobs["text_offset"] = [offset - cut for offset in logprobs["text_offset"]]
        elif offsets and min(offsets) >= cut:
            logprobs["text_offset"] = [offset - cut for offset in offsets]
    return dump(response)
