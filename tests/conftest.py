"""Shared fixtures: the deterministic toy backend, the real embedded model, and its OpenAI-compatible server."""

from __future__ import annotations

import pytest

from attrib.backends.toy import ToyBackend


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test (and every command it starts) caches under its own temporary directory, never ~/.cache."""
    monkeypatch.setenv("ATTRIB_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def toy() -> ToyBackend:
    """A toy model that needs "paris" (2 nats per output token) and "capital" (1 nat)."""
    return ToyBackend(sensitivity={"paris": 2.0, "capital": 1.0}, output=" yes it is")


@pytest.fixture(scope="session")
def llama():
    """The embedded Gemma 3 270M through llama.cpp, loaded once for the whole test session."""
    from attrib.backends.llama import LlamaBackend

    backend = LlamaBackend()
    yield backend
    backend.close()


SERVER_KEY = "sk-attrib-loopback-7c1e9d04b2"


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory):
    """llama-cpp-python's OpenAI-compatible server with the embedded model on a free loopback port.

    Started once per session with an API key; its log goes into the session's temp
    directory and into the failure message if it does not start.
    """
    from attrib.testing.llama_server import llama_server as serve

    log_path = tmp_path_factory.mktemp("server") / "server.log"
    try:
        with serve(api_key=SERVER_KEY, log_path=log_path) as server:
            yield server
    except RuntimeError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory):
    """vLLM's OpenAI-compatible server (CPU build) with the embedded model as a float32
    checkpoint, on a free loopback port, started once for the whole session (about a
    minute and several GB; ``bash .ci/vllm-env`` installs it).

    ``ATTRIB_TEST_VLLM_URL`` (a ``/v1`` URL of a server started by
    ``python -m attrib.testing.vllm_server``) reuses a running one instead.
    """
    import os

    from attrib.testing.llama_server import Server
    from attrib.testing.vllm_server import MODEL_NAME
    from attrib.testing.vllm_server import vllm_server as serve

    running = os.environ.get("ATTRIB_TEST_VLLM_URL")
    if running:
        yield Server(url=running.rstrip("/"), key=None, model=MODEL_NAME)
        return
    log_path = tmp_path_factory.mktemp("vllm") / "vllm.log"
    try:
        with serve(api_key=SERVER_KEY, log_path=log_path) as server:
            yield server
    except RuntimeError as error:
        pytest.fail(str(error))
