"""Secrets and server text: what may be shown, recorded or logged.

The API key and the base URL's query values are removed, with their encoded forms
(percent-encoding, base64, hex), from every answer the endpoint sends and every
message (:class:`Secrets`); key-like strings (``sk-...``) leave messages too. The
base URL is shown without credentials or query values (:func:`redact_url`, from
:mod:`attrib.urls`, which parses a base URL once where it enters the backend).
Anything a server says is data: its error text loses escape sequences and
control characters before it reaches a message (:func:`clean`), so an endpoint
cannot retitle or clear the user's terminal (issue 14, item 6).
"""

from __future__ import annotations

import base64
import json
import re
import string
import unicodedata
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from attrib.urls import REDACTED, safe_url

__all__ = ["MIN_SECRET", "Secrets", "clean", "redact_url", "scrub"]


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
    """``url`` without user name, password or fragment, a query shown as ``?[redacted]``
    (safe to record and log; :func:`attrib.urls.safe_url`)."""
    return safe_url(url)


#: Secrets shorter than this are not removed from text (a local server's ``"none"``
#: is no secret, and removing every short match would garble messages).
MIN_SECRET = 8

_BASE64 = frozenset(string.ascii_letters + string.digits + "+/_-")


def _alternation(texts: set[str]) -> re.Pattern[str] | None:
    """One pattern matching any of ``texts``, longest first; ``None`` for none."""
    ordered = sorted(texts, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, ordered))) if ordered else None


def _base64_cores(secret: bytes) -> set[str]:
    """The base64 characters that encode only ``secret``, at each of the three alignments
    it can take inside a longer encoded text (``user:key``, a JSON body, a header).

    At offset ``o`` bytes the secret's bits start at bit ``8o``; the characters whose
    six bits all lie inside the secret are the same whatever surrounds it.
    """
    cores = set()
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + secret).decode("ascii")
        first = -(-8 * offset // 6)
        last = 8 * (offset + len(secret)) // 6
        core = encoded[first:last]
        cores.add(core)
        cores.add(core.translate(str.maketrans("+/", "-_")))  # the URL-safe alphabet
    return cores


class Secrets:
    """Removes secrets from text: each secret and its common transforms become ``[redacted]``.

    The transforms an endpoint may reflect a key in: percent-encoding (``%2B`` and ``%2b``,
    ``+`` for spaces), JSON string escapes, hexadecimal, and base64 (standard or URL-safe)
    of any text containing the key, such as ``user:key`` of a Basic authentication header;
    a base64 word containing the key is removed whole.

    Args:
        secrets: the API key, query values of the base URL, ...; those shorter than
            :data:`MIN_SECRET` characters are ignored.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = tuple(sorted({s for s in secrets if len(s) >= MIN_SECRET}, key=len, reverse=True))
        exact: set[str] = set()
        encoded: set[str] = set()
        for secret in self.secrets:
            raw = secret.encode("utf-8")
            percent = quote(secret, safe="")
            exact |= {secret, percent, quote_plus(secret), re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), percent)}
            exact |= {
                json.dumps(secret)[1:-1],
                json.dumps(secret, ensure_ascii=False)[1:-1],
                raw.hex(),
                raw.hex().upper(),
            }
            encoded |= _base64_cores(raw)
        self._exact = _alternation(exact)
        self._encoded = _alternation(encoded)
        self._shortest = min((len(text) for text in exact | encoded), default=0)

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def scrub(self, text: str) -> str:
        """``text`` with every secret and transform of one replaced by ``[redacted]``."""
        if self._exact is None or self._encoded is None or len(text) < self._shortest:
            return text
        text = self._exact.sub(REDACTED, text)
        spans: list[tuple[int, int]] = []
        for match in self._encoded.finditer(text):  # widened to the whole base64 word around it
            start, end = match.start(), match.end()
            while start > 0 and text[start - 1] in _BASE64:
                start -= 1
            while end < len(text) and text[end] in _BASE64:
                end += 1
            while end < len(text) and text[end] == "=":
                end += 1
            if spans and start <= spans[-1][1]:
                spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
            else:
                spans.append((start, end))
        for start, end in reversed(spans):
            text = text[:start] + REDACTED + text[end:]
        return text

    def scrub_json(self, value: Any) -> Any:
        """A decoded JSON value with :meth:`scrub` applied to every string in it (keys too)."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, list):
            return [self.scrub_json(v) for v in value]
        if isinstance(value, dict):
            return {self.scrub(k): self.scrub_json(v) for k, v in value.items()}
        return value


def scrub(text: str, *, secrets: Secrets) -> str:
    """``text`` without the secrets (and their transforms) or key-like strings (``sk-...``)."""
    return _KEY_LIKE.sub(REDACTED, secrets.scrub(text))
