"""The one table from a failed attempt to (retried?, error type), read by the retries and the messages.

:data:`STATUS_RULES` maps each failure of an attempt, an HTTP status or a
transport kind, to a :class:`Rule`: whether it is retried, and which
:class:`~attrib.errors.EndpointError` it becomes once it is not (the pattern of
httpx's ``HTTPCORE_EXC_MAP`` and openai-python's status-typed errors). The retry
policy and the error messages both read it, so they cannot disagree::

    failure          retried  error raised               meaning
    400 413 415 422  no       RequestRejectedError       the request itself was refused
    401 403          no       AuthenticationError        the API key was refused
    404 405 501      no       RequestRejectedError       no such route or model, or not implemented
    408 409 425      yes      EndpointUnavailableError   timed out / conflict / too early
    429              yes      EndpointUnavailableError   rate-limited (Retry-After is honoured)
    500 502 503 504  yes      EndpointUnavailableError   server error
    timeout          yes      EndpointUnavailableError   no answer within the timeout
    connection       yes      EndpointUnavailableError   refused or dropped connection
    malformed        yes      EndpointUnavailableError   2xx JSON that is cut off or lacks ``choices``
    not-json         no       NotAnAPIError              2xx that is not JSON: a web page at the URL

Other 4xx statuses are refusals and other 5xx statuses are retried. Which
exception class is which transport kind is a table too (:data:`EXCEPTION_KINDS`).

Source: the pattern of httpx's ``HTTPCORE_EXC_MAP`` (one mapping from transport
exceptions) and openai-python's status-typed errors (``RateLimitError`` is a
429 ``APIStatusError``); the statuses retried are those openai-python retries
(408, 409, 429, 5xx) plus 425, and 501 is a refusal (the feature is not there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import openai

from attrib.errors import (
    AuthenticationError,
    EndpointError,
    EndpointUnavailableError,
    NotAnAPIError,
    RequestRejectedError,
)

__all__ = [
    "CONNECTION",
    "EXCEPTION_KINDS",
    "MALFORMED",
    "NOT_JSON",
    "STATUS_RULES",
    "TIMEOUT",
    "NotAnAPIError",
    "Rule",
    "rule_for",
    "says_unsupported",
]


@dataclass(frozen=True)
class Rule:
    """What one failed attempt means.

    Attributes:
        retryable: whether the attempt is sent again (within ``max_retries``).
        error: the exception raised once it is not retried.
        meaning: what happened, for the message.
        fix: what the user can do, for the message.
    """

    retryable: bool
    error: type[EndpointError]
    meaning: str
    fix: str = ""


_KEY_FIX = "set OPENAI_API_KEY (or --api-key-env) to a key the endpoint accepts"
_RETRY_FIX = "check the server or raise --max-retries"
_URL_FIX = "check --base-url (the API root, usually ending in /v1) and --model"

#: Transport kinds of failure that are not HTTP statuses.
TIMEOUT, CONNECTION, MALFORMED, NOT_JSON = "timeout", "connection", "malformed", "not-json"

#: Failure (HTTP status or transport kind) -> what it means. Read by the retry policy and the messages.
STATUS_RULES: Mapping[int | str, Rule] = MappingProxyType(
    {
        400: Rule(False, RequestRejectedError, "rejected the request"),
        401: Rule(False, AuthenticationError, "refused the API key", _KEY_FIX),
        403: Rule(False, AuthenticationError, "refused the API key", _KEY_FIX),
        404: Rule(False, RequestRejectedError, "does not exist", _URL_FIX),
        405: Rule(False, RequestRejectedError, "does not allow this request", _URL_FIX),
        408: Rule(True, EndpointUnavailableError, "timed out", _RETRY_FIX),
        409: Rule(True, EndpointUnavailableError, "reported a conflict", _RETRY_FIX),
        413: Rule(False, RequestRejectedError, "found the request too large"),
        415: Rule(False, RequestRejectedError, "rejected the request's media type"),
        422: Rule(False, RequestRejectedError, "rejected the request"),
        425: Rule(True, EndpointUnavailableError, "found the request too early", _RETRY_FIX),
        429: Rule(True, EndpointUnavailableError, "rate-limited the request", _RETRY_FIX),
        500: Rule(True, EndpointUnavailableError, "had a server error", _RETRY_FIX),
        501: Rule(False, RequestRejectedError, "does not implement this request", _URL_FIX),
        502: Rule(True, EndpointUnavailableError, "had a gateway error", _RETRY_FIX),
        503: Rule(True, EndpointUnavailableError, "was unavailable", _RETRY_FIX),
        504: Rule(True, EndpointUnavailableError, "had a gateway timeout", _RETRY_FIX),
        TIMEOUT: Rule(True, EndpointUnavailableError, "did not answer in time", _RETRY_FIX + " or --timeout"),
        CONNECTION: Rule(True, EndpointUnavailableError, "refused or dropped the connection", _RETRY_FIX),
        MALFORMED: Rule(True, EndpointUnavailableError, "answered with malformed JSON", _RETRY_FIX),
        NOT_JSON: Rule(False, NotAnAPIError, "answered with a page that is not the API's JSON", _URL_FIX),
    }
)

_OTHER_CLIENT = Rule(False, RequestRejectedError, "rejected the request")
_OTHER_SERVER = Rule(True, EndpointUnavailableError, "had a server error", _RETRY_FIX)
_OTHER = Rule(False, EndpointError, "answered with an unexpected status", _URL_FIX)

#: SDK exception -> transport kind, most specific first (a timeout is also a connection error).
EXCEPTION_KINDS: tuple[tuple[type[BaseException], str], ...] = (
    (openai.APITimeoutError, TIMEOUT),
    (openai.APIConnectionError, CONNECTION),
)


def rule_for(failure: int | str) -> Rule:
    """The :class:`Rule` of an HTTP status or transport kind (see :data:`STATUS_RULES`).

    Raises:
        KeyError: for a transport kind that is not in the table.
    """
    known = STATUS_RULES.get(failure)
    if known is not None:
        return known
    if isinstance(failure, int):
        if 400 <= failure < 500:
            return _OTHER_CLIENT
        if failure >= 500:
            return _OTHER_SERVER
        return _OTHER
    raise KeyError(failure)


def says_unsupported(failure: int | str, detail: str, names: Sequence[str]) -> bool:
    """Whether a refusal is an answer that a probed feature is not offered.

    A missing route (404, 405, 501) says so unless its text names the model without
    saying the route does not take it (then the model is what is missing: "The model
    'm' does not exist"; OpenAI's "This is a chat model and not supported in the
    v1/completions endpoint" is about the route); a refused request (400, 422) says so
    only if its text names one of the probed parameters ``names``. Nothing else does:
    rate limits, server errors and transport failures say nothing about support.
    """
    text = detail.lower()
    if failure in (404, 405, 501):
        return "model" not in text or "not supported in" in text or "endpoint" in text
    if failure in (400, 422):
        return any(name.lower() in text for name in names)
    return False
