"""Loopback test harness shared by attrib's tests and benchmarks, and usable by anyone.

* :mod:`attrib.testing.loopback`: a JSON HTTP server on a free loopback port that
  answers each request with a function of it and keeps every request received.
* :mod:`attrib.testing.replay`: that server replaying recorded exchanges with an API.
* :mod:`attrib.testing.proxy`: an OpenAI-compatible HTTP proxy that injects faults
  (429s, 5xx, dropped connections, slow and malformed responses) on a fixed
  schedule, and can add a hidden system prompt (``python -m attrib.testing.proxy --help``).
* :mod:`attrib.testing.llama_server`: starts llama-cpp-python's OpenAI-compatible
  server with the embedded model on a free loopback port
  (``python -m attrib.testing.llama_server --help``; needs ``attrib[test]``).

Nothing here is imported by ``import attrib``.
"""
