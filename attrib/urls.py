"""Base URLs of endpoints: what is sent, and what may be shown, logged or stored.

A base URL given by the user (``--base-url``, ``base_url=``, ``$OPENAI_BASE_URL``)
is parsed once, where it enters a backend, into a :class:`BaseURL`:

- ``root``: scheme, host, port and path; requests are joined to it.
- ``query``: the parameters of its query string, sent after the path of every
  request (:meth:`BaseURL.join`; hosted
  APIs such as Azure OpenAI need ``?api-version=...``), their values never shown:
  a query may carry a key (``?key=...``), and attrib cannot tell which one does.
- ``shown``: the root, and ``?[redacted]`` when there is a query (neither names nor
  values: a bare ``?sk-...`` is a name); the only form that reaches run.json,
  results, cache keys, messages and logs.

User-info (``http://user:password@host``) is refused with :class:`~attrib.errors.InputError`:
the HTTP client would send it as Basic authentication, replacing the API key's
``Authorization: Bearer`` header, and an endpoint that echoes its request would
hand the password back into records. The key belongs in ``$OPENAI_API_KEY`` (or
the variable ``--api-key-env`` names), which is never stored.

:func:`safe_url` gives the shown form of any URL, user-info or not, for places that
show a URL the user gave before it was checked (run.json of a batch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from attrib.errors import InputError

__all__ = ["BaseURL", "REDACTED", "safe_url"]

#: What a secret is replaced with wherever it would be shown.
REDACTED = "[redacted]"


def _host(netloc_host: str | None, port: int | None) -> str:
    host = netloc_host or ""
    if ":" in host:  # IPv6 literal: urlsplit drops its brackets
        host = f"[{host}]"
    return host if port is None else f"{host}:{port}"


def _port(parts: object) -> int | None:
    try:
        return parts.port  # type: ignore[attr-defined,no-any-return]
    except ValueError:  # a port that is not a number: not shown
        return None


@dataclass(frozen=True)
class BaseURL:
    """A base URL split into the part requests are joined to and the query sent with each of them.

    Build it with :meth:`parse`. ``repr`` and ``str`` give :attr:`shown`, never a query value.

    Attributes:
        root: ``scheme://host[:port]/path``, no trailing slash, user-info, query or fragment.
        query: the query's ``(name, value)`` pairs in order, sent with every request.
    """

    root: str
    query: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @classmethod
    def parse(cls, text: str) -> BaseURL:
        """Split ``text``; the fragment is dropped (it is never sent).

        Raises:
            InputError: if ``text`` is not an ``http``/``https`` URL with a host, or carries
                a user name or password (the message says where the key goes instead).
        """
        parts = urlsplit(text.strip())
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise InputError(f"the base URL {safe_url(text)!r} is not an http:// or https:// URL with a host")
        if parts.username is not None or parts.password is not None:
            raise InputError(
                f"the base URL {safe_url(text)!r} carries a user name or password, which would be sent "
                "as Basic authentication in place of the API key; remove it from the URL and give the key "
                "in $OPENAI_API_KEY (or the variable --api-key-env names, or api_key=)"
            )
        try:
            port = parts.port
        except ValueError:
            raise InputError(f"the base URL {safe_url(text)!r} has a port that is not a number") from None
        root = f"{parts.scheme.lower()}://{_host(parts.hostname, port)}{parts.path.rstrip('/')}"
        return cls(root, tuple(parse_qsl(parts.query, keep_blank_values=True)))

    @property
    def shown(self) -> str:
        """The root, and ``?[redacted]`` when there is a query: safe to show and store."""
        return self.root + (f"?{REDACTED}" if self.query else "")

    @property
    def secrets(self) -> tuple[str, ...]:
        """The query's values (and the names of blank ones, a bare ``?token``): to be removed
        from any text the endpoint sends back."""
        return tuple(value or name for name, value in self.query if value or name)

    def join(self, path: str, *, root: str | None = None) -> str:
        """The URL of a request: ``path`` joined to the root (or to ``root``, another base on the
        same server), then the query, re-encoded from its pairs (a repeated name stays repeated)."""
        url = (self.root if root is None else root) + path
        return url + "?" + urlencode(self.query, quote_via=quote) if self.query else url

    def __str__(self) -> str:
        return self.shown

    def __repr__(self) -> str:
        return f"BaseURL({self.shown!r})"


def safe_url(text: str) -> str:
    """``text`` without user-info or fragment, a query shown as ``?[redacted]``; never raises.

    For showing a URL that may not have been checked yet; a URL that cannot be parsed
    shows as ``"[unparsable URL]"``.
    """
    try:
        parts = urlsplit(text.strip())
    except ValueError:
        return "[unparsable URL]"
    host = _host(parts.hostname, _port(parts))
    shown = f"{parts.scheme}://{host}{parts.path.rstrip('/')}" if parts.scheme or host else parts.path.rstrip("/")
    return shown + (f"?{REDACTED}" if parts.query else "")
