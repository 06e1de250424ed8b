"""Exceptions raised by attrib.

Every error attrib raises on purpose derives from :class:`AttribError`; its
message is one line that names the problem and, where there is one, the fix.
The command line prints that line and exits non-zero, without a traceback.

::

    AttribError
    ├── InputError (also ValueError)        the caller's input cannot be used
    │   ├── EmptyPromptError                 prompt is empty or only whitespace
    │   ├── PromptTooLongError               prompt + output exceed the model's context
    │   ├── UnknownNameError                 unknown method, level, backend, perturbation
    │   └── BudgetError                      budget too small for the requested method
    ├── BackendError                         reaching or running a model failed
    │   ├── BackendUnavailableError          an optional dependency is not installed
    │   ├── ModelNotFoundError               model file missing or not loadable
    │   ├── TokenizationError                tokenizer does not round-trip the text
    │   ├── EmptyOutputError                 the model generated no output to explain
    │   ├── ResponseMismatchError            wrong number of log-probabilities returned
    │   └── EndpointError                    an HTTP endpoint refused or kept failing
    │       ├── AuthenticationError          401/403: the API key was refused
    │       ├── RequestRejectedError         other 4xx and 501: the endpoint rejected the request
    │       ├── NotAnAPIError                a 2xx answer that is not the API's JSON (a web page)
    │       └── EndpointUnavailableError     429, 5xx, timeouts or bad JSON after all retries
    ├── CacheError                           the response cache cannot be opened or used
    ├── RegistrationError (also TypeError)   a registry entry is not a class of its kind's base
    └── ResultError (also ValueError)        a result's data is inconsistent
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "AttribError",
    "InputError",
    "EmptyPromptError",
    "PromptTooLongError",
    "UnknownNameError",
    "BudgetError",
    "BackendError",
    "BackendUnavailableError",
    "ModelNotFoundError",
    "TokenizationError",
    "EmptyOutputError",
    "ResponseMismatchError",
    "EndpointError",
    "AuthenticationError",
    "RequestRejectedError",
    "EndpointUnavailableError",
    "NotAnAPIError",
    "CacheError",
    "RegistrationError",
    "ResultError",
]


class AttribError(Exception):
    """Base class of every error attrib raises on purpose."""


class InputError(AttribError, ValueError):
    """The caller's input cannot be used as given."""


class EmptyPromptError(InputError):
    """The prompt is empty or contains only whitespace."""


class PromptTooLongError(InputError):
    """The prompt plus the output does not fit in the model's context window.

    Attributes:
        n_tokens: tokens needed (prompt, output and special tokens).
        limit: the model's context length in tokens.
    """

    def __init__(self, message: str, *, n_tokens: int, limit: int) -> None:
        super().__init__(message)
        self.n_tokens = n_tokens
        self.limit = limit


class UnknownNameError(InputError):
    """A name (method, level, backend, perturbation) is not one attrib knows."""

    @classmethod
    def for_choice(cls, kind: str, name: object, choices: Iterable[str]) -> UnknownNameError:
        """Build the error for ``name`` not in ``choices``, suggesting the closest match."""
        options = sorted(choices)
        close = difflib.get_close_matches(str(name), options, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return cls(f"unknown {kind} {name!r}{hint} (choose from {', '.join(options)})")


class BudgetError(InputError):
    """The call budget is too small for the requested method."""


class BackendError(AttribError):
    """Reaching or running a model failed."""


class BackendUnavailableError(BackendError):
    """An optional dependency needed by a backend is not installed."""


class ModelNotFoundError(BackendError):
    """The model file does not exist or cannot be loaded."""


class TokenizationError(BackendError):
    """The backend's tokenizer does not reproduce the text it was given."""


class EmptyOutputError(BackendError):
    """The model generated no tokens, so there is no output to explain."""


class ResponseMismatchError(BackendError):
    """A backend returned a different number of log-probabilities than tokens scored."""


class EndpointError(BackendError):
    """An HTTP model endpoint refused a request or kept failing.

    Attributes:
        status: the last HTTP status code, or ``None`` (connection error, timeout, bad JSON).
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthenticationError(EndpointError):
    """The endpoint refused the API key (HTTP 401 or 403). Not retried."""


class RequestRejectedError(EndpointError):
    """The endpoint rejected the request itself (HTTP 400, 404, 422). Not retried."""


class NotAnAPIError(EndpointError):
    """A 2xx answer that is not the API's JSON (a web UI or captive portal at the base URL). Not retried."""


class EndpointUnavailableError(EndpointError):
    """Rate limits, server errors, timeouts or malformed responses outlasted every retry."""


class CacheError(AttribError):
    """The persistent cache cannot be opened or used (a file where the directory should be,
    no permission, a database that fails mid-run). The message names the file and the fix."""


class RegistrationError(AttribError, TypeError):
    """A registry entry cannot be used: not a ``"module:Class"`` string, a target that does
    not import, or a class that does not derive from its kind's base (a backend that is not
    an :class:`~attrib.backend.Backend`, a method that is not a :class:`~attrib.methods.base.Scheduler`)."""


class ResultError(AttribError, ValueError):
    """An attribution result is inconsistent (wrong shapes, unknown schema)."""
