"""Shared fixtures: the deterministic toy backend, and the real embedded model (session-scoped)."""

from __future__ import annotations

import pytest

from attrib.backends.toy import ToyBackend


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
