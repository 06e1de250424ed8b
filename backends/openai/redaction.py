"""Secrets and server text: what may be shown, recorded or logged.

The API key is removed from every message, key-like strings (``sk-...``) too,
and the base URL is shown without credentials or query (:func:`redact_url`).
Anything a server says is data: its error text loses escape sequences and
control characters before it reaches a message (:func:`clean`), so an endpoint
cannot retitle or clear the user's terminal (issue 14, item 6).
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit, urlunsplit

__all__ = ["clean", "redact_url", "scrub"]


# CSI, OSC, DCS/PM/APC/SOS strings and two-byte escapes, 7-bit and C1 forms.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x9b[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|(?:\x1b[P^_X]|[\x90\x98\x9e\x9f])[^\x1b\x9c]*(?:\x1b\\|\x9c)?"
    r"|\x1b[@-Z\\-_]?"
)
_KEY_LIKE = re.compile(r"\b(sk|key|tok)-[A-Za-z0-9_\-*.]{4,}")


def clean(text: str, limit: int = 300) -> str:
    """Server text made safe for one line on a terminal: escape sequences removed, control and
    format characters (C0, C1, bidirectional overrides) dropped, whitespace collapsed, at most
    ``limit`` characters."""
    text = _ESCAPES.sub("", text)
    text = "".join(" " if c in "\t\n\r\f\v" else c for c in text)
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf"))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def redact_url(url: str) -> str:
    """``url`` without user name, password, query or fragment (safe to record and log)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def scrub(text: str, *, secret: str, base_url: str) -> str:
    """``text`` without ``secret``, key-like strings (``sk-...``) or the credentials of ``base_url``."""
    if secret:
        text = text.replace(secret, "[redacted]")
    text = _KEY_LIKE.sub("[redacted]", text)
    return text.replace(base_url, redact_url(base_url))
