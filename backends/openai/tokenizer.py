"""Units of an endpoint's text: the server's own tokenizer routes, or words, never a mismatched tokenizer.

llama-cpp-python's server exposes ``/extras/tokenize`` (``{"input": text}`` ->
``{"tokens": [ids]}``, BOS first) and ``/extras/detokenize`` (``{"tokens": [ids]}``
-> ``{"text": ...}``) at the server root, outside ``/v1``. When they answer, units
are the model's tokens (``source == "server"``); when the endpoint answers that
they are not there (a missing route, a refusal, a web page instead of JSON),
units are words (``"words"``: whitespace-led runs, so the finest level is the
word). A transport failure (5xx, 429, timeouts, dropped connections, malformed
JSON after every retry) fails the run instead: units must not silently change.

Token ids of this backend are local indices of token texts (:class:`Vocabulary`);
only texts are ever sent.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any

from attrib.errors import EndpointUnavailableError, RequestRejectedError, TokenizationError, UnknownNameError

from .statuses import NotAnAPIError
from .transport import Transport

__all__ = ["SOURCES", "EndpointTokenizer", "Vocabulary", "words"]

#: Unit sources: ``auto`` picks ``server`` when the routes answer, else ``words``.
SOURCES: tuple[str, ...] = ("auto", "server", "words")

_WORD = re.compile(r"\s*\S+|\s+$")

#: Tokenizer routes fail deterministically on some tokens (a byte that is not UTF-8 on its
#: own), so they get at most this many retries.
_ROUTE_RETRIES = 2


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
        self._bos: tuple[int, ...] = ()
        self._pieces: dict[int, str] = {}

    async def resolve(self) -> str:
        """The unit source in use, ``"server"`` or ``"words"``, asking the endpoint once.

        Raises:
            RequestRejectedError: if ``option == "server"`` and the endpoint has no tokenizer routes.
            EndpointError: if the endpoint keeps failing (never read as "no tokenizer").
        """
        if self.source is not None:
            return self.source
        reply = await self._offered()
        if reply is None:
            if self.option == "server":
                raise RequestRejectedError(
                    f"{self.transport.endpoint} has no tokenizer routes (/extras/tokenize); use tokenizer='words'"
                )
            self.source = "words"
            return "words"
        empty = await self._route("/extras/tokenize", {"input": ""})
        self._bos = _token_ids(empty)
        self.source = "server"
        return "server"

    async def _offered(self) -> dict[str, Any] | None:
        """The routes' answer to a probe, or ``None`` when the endpoint answers they are not there."""
        body = self._body({"input": "a b"})
        known = self.transport.recall("/extras/tokenize", body=body, model=self.served)
        if isinstance(known, dict):
            return known
        try:
            reply = await self.transport.probe_call(
                "/extras/tokenize",
                body,
                names=("tokenize",),
                what="probing the tokenizer",
                root=True,
                retries=self._retries,
            )
        except (RequestRejectedError, NotAnAPIError):
            return None
        if reply is None or not isinstance(reply.get("tokens"), list):
            return None
        self.transport.remember(reply, "/extras/tokenize", body=body, model=self.served)
        return reply

    @property
    def _retries(self) -> int:
        return min(_ROUTE_RETRIES, self.transport.max_retries)

    def _body(self, body: dict[str, Any]) -> dict[str, Any]:
        return body if self.model is None else {**body, "model": self.model}

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
        ids = list(_token_ids(await self._route("/extras/tokenize", {"input": text})))
        if self._bos and tuple(ids[: len(self._bos)]) == self._bos:
            ids = ids[len(self._bos) :]
        missing = sorted(set(ids) - set(self._pieces))

        async def piece(token: int) -> None:
            answer = await self._route("/extras/detokenize", {"tokens": [token]})
            self._pieces[token] = str(answer.get("text", ""))

        try:
            await asyncio.gather(*(piece(t) for t in missing))
        except EndpointUnavailableError as error:
            # llama-cpp-python's server answers 500 for a token that is not UTF-8 on its own.
            raise TokenizationError(f"the server could not detokenize a token on its own ({error})") from None
        pieces = [self._pieces[t] for t in ids]
        if "".join(pieces) != text:
            raise TokenizationError(
                "the server's tokens do not reproduce the text (a token holds part of a character, "
                "or the text contains special-token syntax)"
            )
        return pieces


def _token_ids(reply: dict[str, Any]) -> tuple[int, ...]:
    tokens = reply.get("tokens")
    if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
        raise TokenizationError("the server's /extras/tokenize answered without a list of token ids")
    return tuple(tokens)
