"""An OpenAI-compatible HTTP proxy on loopback that injects faults and hidden system prompts.

It sits between a client (attrib's HTTP backend, the openai SDK, curl) and an
OpenAI-compatible server such as llama-cpp-python's, and is for two jobs:

- Fault injection, to test retries and caching without a flaky server: rate
  limits, server errors, dropped connections, slow and malformed answers, on a
  deterministic schedule; ``records`` and ``forwarded_bodies()`` tell a test
  what reached the upstream and what the client actually got.
- Hidden-system-prompt emulation, for auditing: the proxy steers every chat or
  completion request with a system prompt the caller cannot see, the way a
  hosted endpoint may, so an attribution run can be checked for its traces.

Forwarding: any method, path, query and body goes to ``upstream + path`` (the
upstream is the server root, ``http://127.0.0.1:8080``, not ``.../v1``). The
request headers Content-Type, Authorization and Accept are passed on; the
answer's status, body, Content-Type and Retry-After come back, always with a
Content-Length (HTTP/1.1 keep-alive). Bodies are buffered, so a streamed (SSE)
answer arrives in one piece. An unreachable upstream gives 502.

Fault schedule (no randomness): POST requests on ``fault_paths`` are numbered
k = 0, 1, 2, ... in arrival order. Request k is faulted iff ``faults`` is not
empty and ``k % fault_every == 0``; it then gets ``faults[(k // fault_every) %
len(faults)]``, every other request gets "ok". So ``faults=("429",)`` fails
every request, ``faults=("429", "ok")`` every second one, and ``faults=("500",),
fault_every=3`` requests 0, 3, 6, ... Each numbered request adds a ``Record``
to ``records`` just before its answer is written (concurrent ones in any order). Other
paths and methods (``GET /v1/models``, ``/extras/tokenize``) are never faulted
and not recorded. The faults:

- ``ok``: forward normally.
- ``429``: answer 429 with ``Retry-After: <retry_after>`` and an OpenAI-style
  ``rate_limit_error`` body, without calling the upstream.
- ``500``: answer 500 with an OpenAI-style ``server_error`` body, without
  calling the upstream.
- ``drop``: close the connection without any answer (the client sees a
  transport error such as httpx.RemoteProtocolError); the upstream is not called.
- ``slow``: wait ``slow_seconds``, then forward normally (a client with a
  shorter timeout times out; the upstream is still called).
- ``malformed``: forward, then answer 200, ``application/json``, with the
  first half of the upstream's body (not valid JSON).

Hidden system prompt (``inject_system``), applied whatever the fault schedule:

- POST /v1/chat/completions: ``{"role": "system", "content": inject_system}``
  is inserted as the first message, before any system message of the caller's.
  The answer is passed through.
- POST /v1/completions: the prompt (a string, or each string of a list) becomes
  ``inject_system + "\\n\\n" + prompt``; a prompt of token ids is left as is.
  The answer is rewritten so the prefix does not show: with echo, the prefix is
  cut from each choice's text, and its tokens from the logprobs lists, whose
  text offsets then start at 0 on the caller's prompt; without echo, offsets
  that count the prompt move back by the prefix length. The log-probabilities
  kept are the real ones, conditioned on the hidden prefix: that is what an
  audit looks for. ``usage`` is unchanged (it counts the prefix's tokens).

Run as a script (Ctrl-C stops it)::

    python -m attrib.testing.proxy --upstream http://127.0.0.1:8080 --faults 429,ok
    proxy listening on http://127.0.0.1:PORT/v1 -> http://127.0.0.1:8080

In a test::

    with Proxy("http://127.0.0.1:8080", faults=("drop", "ok")) as proxy:
        client = openai.OpenAI(base_url=proxy.url, api_key="none")

The package: :mod:`~attrib.testing.proxy.faults` (fault names, schedule, records,
error answers), :mod:`~attrib.testing.proxy.hidden` (the hidden system prompt),
:mod:`~attrib.testing.proxy.server` (:class:`Proxy`), :mod:`~attrib.testing.proxy.handler`
(the HTTP server and handler) and :mod:`~attrib.testing.proxy.cli` (the script).
"""

from attrib.testing.proxy.cli import main
from attrib.testing.proxy.faults import FAULTS, Record
from attrib.testing.proxy.server import Proxy

__all__ = ["FAULTS", "Proxy", "Record", "main"]
