"""Units of an endpoint's text: the server's own tokenizer routes, or words, never a mismatched tokenizer.

Servers expose their tokenizer on routes outside ``/v1``, each with its own
field names (:data:`ROUTES`, probed in this order, the first that answers with
token ids is used and remembered):

* llama-cpp-python: ``POST /extras/tokenize`` (``{"input"}`` -> ``{"tokens"}``) and
  ``/extras/detokenize`` (``{"tokens"}`` -> ``{"text"}``);
* vLLM and SGLang: ``POST /tokenize`` (``{"prompt"}`` -> ``{"tokens", "count",
  "max_model_len"}``) and ``/detokenize`` (``{"tokens"}`` -> ``{"prompt"}`` on vLLM,
  ``{"text"}`` on SGLang);
* SGLang's OpenAI-style copies ``POST /v1/tokenize`` and ``/v1/detokenize``;
* llama.cpp's ``llama-server``: ``POST /tokenize`` (``{"content"}`` -> ``{"tokens"}``)
  and ``/detokenize`` (``{"tokens"}`` -> ``{"content"}``).

All of them put the model's BOS first when it has one; the ids an empty text
tokenizes to are taken as that prefix and dropped from every split. When a route
answers, units are the model's tokens (``source == "server"``; :attr:`EndpointTokenizer.route`
names the route, recorded in results); when every route answers that it is not
there (a missing route, a refusal, a web page instead of JSON), units are words
(``"words"``: whitespace-led runs, so the finest level is the word). A transport
failure (5xx, 429, timeouts, dropped connections, malformed JSON after every
retry) fails the run instead: units must not silently change.

Token ids of this backend are local indices of token texts (:class:`Vocabulary`);
only texts are ever sent.

Sources: llama-cpp-python's server (``llama_cpp/server/app.py``), vLLM's
"Tokenizer API" (OpenAI-compatible server documentation), SGLang's native API
documentation (``/tokenize``, ``/detokenize``) and llama.cpp's server README.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from attrib.errors import EndpointUnavailableError, RequestRejectedError, TokenizationError, UnknownNameError

from .statuses import NotAnAPIError
from .transport import Transport

__all__ = ["ROUTES", "SOURCES", "EndpointTokenizer", "TokenizerRoutes", "Vocabulary", "words"]

#: Unit sources: ``auto`` picks ``server`` when the routes answer, else ``words``.
SOURCES: tuple[str, ...] = ("auto", "server", "words")

_WORD = re.compile(r"\s*\S+|\s+$")

#: Tokenizer routes fail deterministically on some tokens (a byte that is not UTF-8 on its
#: own), so they get at most this many retries.
_ROUTE_RETRIES = 2

#: The text a probe tokenizes.
_PROBE_TEXT = "a b"


@dataclass(frozen=True)
class TokenizerRoutes:
    """One server family's tokenizer routes, at the server root (outside the API's ``/v1``).

    Attributes:
        tokenize: the route that turns ``{text_field: text}`` into ``{"tokens": [ids]}``.
        detokenize: the route that turns ``{"tokens": [ids]}`` into text.
        text_field: the request field holding the text.
        texts: the answer fields that may hold detokenized text, first present wins.
    """

    tokenize: str
    detokenize: str
    text_field: str
    texts: tuple[str, ...] = ("text", "prompt", "content")

    @property
    def label(self) -> str:
        """How results name the route: ``"POST /tokenize {prompt}"``."""
        return f"POST {self.tokenize} {{{self.text_field}}}"


#: The routes probed, in order: llama-cpp-python, vLLM and SGLang, SGLang's ``/v1`` copies,
#: llama.cpp's ``llama-server``.
ROUTES: tuple[TokenizerRoutes, ...] = (
    TokenizerRoutes("/extras/tokenize", "/extras/detokenize", "input"),
    TokenizerRoutes("/tokenize", "/detokenize", "prompt"),
    TokenizerRoutes("/v1/tokenize", "/v1/detokenize", "prompt"),
    TokenizerRoutes("/tokenize", "/detokenize", "content"),
)


def words(text: str) -> list[str]:
    """``text`` as words, each with the whitespace before it; they join back to ``text``."""
    return _WORD.findall(text)


class Vocabulary:
    """Local token ids for token texts: the first text seen gets 0, the next new one 1, and so on."""

    def __init__(self) -> None:
        self._texts: list[str] = []
        self._ids: dict[str, int] = {}

    def intern(self, text: str) -> int:
        """The id of ``text``, given a new one the first time."""
        index = self._ids.get(text)
        if index is None:
            index = len(self._texts)
            self._texts.append(text)
            self._ids[text] = index
        return index

    def ids(self, pieces: Sequence[str]) -> tuple[int, ...]:
        """The ids of token texts."""
        return tuple(self.intern(str(piece)) for piece in pieces)

    def texts(self, ids: Sequence[int]) -> list[str]:
        """The texts of ids.

        Raises:
            IndexError: for an id this vocabulary never gave out.
        """
        return [self._texts[int(i)] for i in ids]


class EndpointTokenizer:
    """Splits text by the server's tokenizer routes or into words.

    Args:
        transport: the endpoint.
        option: ``"auto"``, ``"server"`` (fail if the routes are missing) or ``"words"``.
        model: the model name sent with each request, if any.

    Attributes:
        source: ``"server"`` or ``"words"`` once resolved (``None`` before).
        routes: the server's routes in use (``None`` for words or before resolving).

    Raises:
        UnknownNameError: for an unknown ``option``.
    """

    def __init__(self, transport: Transport, *, option: str = "auto", model: str | None = None) -> None:
        if option not in SOURCES:
            raise UnknownNameError.for_choice("tokenizer", option, SOURCES)
        self.transport = transport
        self.option = option
        self.model = model
        #: The served model's name once known: part of the key of every remembered answer.
        self.served: str | None = model
        self.source: str | None = "words" if option == "words" else None
        self.routes: TokenizerRoutes | None = None
        self._bos: tuple[int, ...] = ()
        self._pieces: dict[int, str] = {}
        #: The server's id of each token text seen; ``None`` for a text two ids share.
        self._ids: dict[str, int | None] = {}

    def server_ids(self, pieces: Sequence[str]) -> tuple[int, ...] | None:
        """The server's token ids of token texts this tokenizer split out, BOS first, when the
        server takes prompts as token ids (vLLM's and SGLang's routes); ``None`` when it does
        not, or a text is unknown or shared by two ids. Sent instead of text, they keep the
        tokens exactly (text re-tokenized after a deletion can merge into other tokens)."""
        if self.routes is None or self.routes.text_field != "prompt":
            return None
        found = [self._ids.get(piece) for piece in pieces]
        if any(token is None for token in found):
            return None
        return self._bos + tuple(token for token in found if token is not None)

    @property
    def route(self) -> str | None:
        """The tokenize route in use as results record it (``"POST /tokenize {prompt}"``), or ``None``."""
        return None if self.routes is None else self.routes.label

    async def resolve(self) -> str:
        """The unit source in use, ``"server"`` or ``"words"``, asking the endpoint once.

        Raises:
            RequestRejectedError: if ``option == "server"`` and the endpoint has no tokenizer routes.
            EndpointError: if the endpoint keeps failing (never read as "no tokenizer").
        """
        if self.source is not None:
            return self.source
        self.routes = self._remembered()
        for routes in ROUTES if self.routes is None else ():
            if await self._offered(routes):
                self.routes = routes
                self.transport.remember(_verdict(routes), "tokenizer-routes", model=self.served)
                break
        if self.routes is None:
            if self.option == "server":
                tried = ", ".join(dict.fromkeys(r.tokenize for r in ROUTES))
                raise RequestRejectedError(
                    f"{self.transport.endpoint} has no tokenizer routes ({tried}); use tokenizer='words'"
                )
            self.source = "words"
            return "words"
        self._bos = _token_ids(await self._route(self.routes.tokenize, self._text_body("")), self.routes)
        self.source = "server"
        return "server"

    def _remembered(self) -> TokenizerRoutes | None:
        """The routes a probe of an earlier run found (only found routes are remembered: a
        server without any is asked again, in case it gained them)."""
        known = self.transport.recall("tokenizer-routes", model=self.served)
        return next((r for r in ROUTES if _verdict(r) == known), None)

    async def _offered(self, routes: TokenizerRoutes) -> bool:
        """Whether ``routes`` answer a probe with token ids; ``False`` when the endpoint answers
        they are not there (never on a transport failure, which raises)."""
        body = self._body({routes.text_field: _PROBE_TEXT})
        known = self.transport.recall(routes.tokenize, body=body, model=self.served)
        if isinstance(known, dict):
            return True
        try:
            reply = await self.transport.probe_call(
                routes.tokenize,
                body,
                names=("tokenize", routes.text_field),
                what="probing the tokenizer",
                root=True,
                retries=self._retries,
            )
        except (RequestRejectedError, NotAnAPIError):
            return False
        tokens = None if reply is None else reply.get("tokens")
        # llama-server answers a body without its field with no tokens: that is not this route.
        if not (isinstance(tokens, list) and tokens and all(isinstance(t, int) for t in tokens)):
            return False
        self.transport.remember(reply, routes.tokenize, body=body, model=self.served)
        return True

    @property
    def _retries(self) -> int:
        return min(_ROUTE_RETRIES, self.transport.max_retries)

    def _body(self, body: dict[str, Any]) -> dict[str, Any]:
        return body if self.model is None else {**body, "model": self.model}

    def _text_body(self, text: str) -> dict[str, Any]:
        if self.routes is None:  # pragma: no cover - only called once resolved
            raise RuntimeError("the tokenizer routes were not resolved")
        return {self.routes.text_field: text}

    async def _route(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """A tokenizer route's answer, from the metadata cache when it was asked before."""
        body = self._body(body)
        known = self.transport.recall(path, body=body, model=self.served)
        if isinstance(known, dict):
            return known
        reply = await self.transport.call("POST", path, body, root=True, retries=self._retries)
        self.transport.remember(reply, path, body=body, model=self.served)
        return reply

    async def split(self, text: str) -> list[str]:
        """``text`` as token texts that join back to it: the server's tokens, or words.

        Raises:
            TokenizationError: if the server's tokens do not reproduce the text.
            EndpointError: if the endpoint keeps failing.
        """
        if not text or await self.resolve() == "words":
            return words(text)
        routes = self.routes
        if routes is None:  # pragma: no cover - resolve() sets it with source "server"
            raise RuntimeError("the tokenizer routes were not resolved")
        ids = list(_token_ids(await self._route(routes.tokenize, self._text_body(text)), routes))
        if self._bos and tuple(ids[: len(self._bos)]) == self._bos:
            ids = ids[len(self._bos) :]
        missing = sorted(set(ids) - set(self._pieces))

        async def piece(token: int) -> None:
            answer = await self._route(routes.detokenize, {"tokens": [token]})
            self._pieces[token] = _detokenized(answer, routes)

        try:
            await asyncio.gather(*(piece(t) for t in missing))
        except EndpointUnavailableError as error:
            # llama-cpp-python's server answers 500 for a token that is not UTF-8 on its own.
            raise TokenizationError(f"the server could not detokenize a token on its own ({error})") from None
        pieces = [self._pieces[t] for t in ids]
        for token, token_text in zip(ids, pieces, strict=True):
            if self._ids.setdefault(token_text, token) != token:
                self._ids[token_text] = None
        if "".join(pieces) != text:
            raise TokenizationError(
                "the server's tokens do not reproduce the text (a token holds part of a character, "
                "or the text contains special-token syntax)"
            )
        return pieces


def _verdict(routes: TokenizerRoutes) -> dict[str, str]:
    return {"tokenize": routes.tokenize, "field": routes.text_field}


def _token_ids(reply: dict[str, Any], routes: TokenizerRoutes) -> tuple[int, ...]:
    tokens = reply.get("tokens")
    if not isinstance(tokens, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in tokens):
        raise TokenizationError(f"the server's {routes.tokenize} answered without a list of token ids")
    return tuple(tokens)


def _detokenized(reply: dict[str, Any], routes: TokenizerRoutes) -> str:
    for field in routes.texts:
        value = reply.get(field)
        if isinstance(value, str):
            return value
    raise TokenizationError(f"the server's {routes.detokenize} answered without text ({', '.join(routes.texts)})")
