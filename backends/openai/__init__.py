"""OpenAI-compatible HTTP endpoints: OpenAI, vLLM, llama.cpp's server, llama-cpp-python's server, Ollama.

One file per idea:

- :mod:`.transport`: the SDK client (async, its own retries off), tenacity retries
  (``Retry-After`` or exponential backoff with full jitter), the concurrency cap,
  the metadata cache and the usage counters.
- :mod:`.statuses`: the one table from HTTP status or transport failure to
  (retried?, error type) that the retries and the messages both read.
- :mod:`.redaction`: no key or URL credentials in any message, and server text
  without escape sequences or control characters.
- :mod:`.tokenizer`: the server's tokenizer routes, or words; never a mismatched tokenizer.
- :mod:`.rungs`: the scoring ladder, one strategy per file (:mod:`.rungs.base` is the
  contract and says how to add a rung; :mod:`.rungs.regeneration` the rules the
  regenerating rungs share).
- :mod:`.probe`: walks the ladder, most exact first, and remembers the verdict.
- :mod:`.backend`: :class:`OpenAIBackend`, composing the three.

The scoring ladder
------------------
How a fixed output can be scored depends on what the endpoint offers. The backend
probes once, from the most exact rung down, and records the rung in every result
(``backend["scoring"]``):

``forced`` (:mod:`.rungs.forced`)
    ``/v1/completions`` with ``echo`` and ``logprobs``: exact forced decoding in nats,
    the echoed tokens checked against the output's.
``top_logprobs`` (:mod:`.rungs.top_logprobs`)
    Chat completions with ``logprobs``/``top_logprobs``: the output regenerated under
    each prompt and read from the top-k (estimates in nats; bounds counted).
``text`` (:mod:`.rungs.text`)
    Chat completions only: the share of each output token that survives
    (``score_kind = "text-similarity"``, not nats).

A probe skips a rung only when the endpoint answers that it lacks it (a 4xx naming
the route or parameter, a 2xx without log-probabilities); transport failures after
every retry fail the run and store no verdict (:mod:`.probe`).

Failures and secrets
--------------------
429, 5xx, 408/409/425, timeouts, dropped connections and malformed JSON are
retried; 401/403 raise :class:`~attrib.errors.AuthenticationError` and other 4xx
:class:`~attrib.errors.RequestRejectedError` at once; a 2xx web page where the API
should be raises :class:`~.statuses.NotAnAPIError` (the table is in
:mod:`.statuses`). The API key is read from the argument or ``OPENAI_API_KEY``,
is removed from every message, and never enters a cache, result, log or report;
credentials in the URL are stripped too, and server text loses its control
characters before it is shown.
"""

from .backend import OpenAIBackend
from .probe import ladder
from .redaction import redact_url

__all__ = ["OpenAIBackend", "ladder", "redact_url"]
