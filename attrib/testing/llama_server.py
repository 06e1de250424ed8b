"""Start llama-cpp-python's OpenAI-compatible server with the embedded model on loopback.

Used by the API-backend tests and benchmarks. The server needs the ``[server]``
extra of llama-cpp-python (``pip install "llama-cpp-python[server]"``). Run it by
hand with ``python -m attrib.testing.llama_server`` to try ``--backend openai``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

__all__ = ["Server", "llama_server", "free_port"]

MODEL_ALIAS = "gemma3-270m"


@dataclass(frozen=True)
class Server:
    """A running OpenAI-compatible server: its ``/v1`` URL, API key and model name, and the id
    of the process started for it (``None`` for a server started elsewhere)."""

    url: str
    key: str | None
    model: str
    pid: int | None = None

    @property
    def root(self) -> str:
        return self.url.removesuffix("/v1")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def llama_server(
    *,
    port: int | None = None,
    api_key: str | None = None,
    log_path: Path | None = None,
    n_threads: int = 2,
    chat_format: str = "gemma",
    startup_seconds: float = 120.0,
) -> Iterator[Server]:
    """Run the server with the embedded Gemma 3 270M for the duration of the ``with`` block.

    The GGUF carries no chat template, so a chat format is set explicitly: Gemma's
    turns, which the base model follows best (with ChatML it mostly answers nothing).
    llama-cpp-python's ``gemma`` format drops system messages (Gemma's convention), so
    chat requests carry only user and assistant turns to this server; the audit tests
    use the ``forced`` rung, which sends the rendered text through ``/v1/completions``.

    Raises:
        RuntimeError: if the server exits or does not answer within ``startup_seconds``
            (the message holds the end of its log).
    """
    from attrib.backends.llama import embedded_model_path

    port = port or free_port()
    options = {
        "--model": str(embedded_model_path()),
        "--model_alias": MODEL_ALIAS,
        "--host": "127.0.0.1",
        "--port": str(port),
        "--n_ctx": "4096",
        "--n_threads": str(n_threads),
        "--chat_format": chat_format,
    }
    if api_key:
        options["--api_key"] = api_key
    command = [sys.executable, "-m", "llama_cpp.server", *itertools.chain.from_iterable(options.items())]
    url = f"http://127.0.0.1:{port}/v1"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def tail() -> str:
        return log_path.read_text(errors="replace")[-2000:] if log_path is not None else "(no log kept)"

    with contextlib.ExitStack() as stack:
        log: IO[bytes] | int = subprocess.DEVNULL
        if log_path is not None:
            log = stack.enter_context(log_path.open("wb"))
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        stack.callback(_stop, process)
        wait_until_ready(process, url, headers, name="llama_cpp.server", seconds=startup_seconds, tail=tail)
        yield Server(url=url, key=api_key, model=MODEL_ALIAS, pid=process.pid)


def wait_until_ready(
    process: subprocess.Popen[bytes],
    url: str,
    headers: dict[str, str],
    *,
    name: str,
    seconds: float,
    tail: Callable[[], str],
    interval: float = 0.5,
) -> None:
    """Wait until the server started as ``process`` answers ``GET {url}/models``.

    Raises:
        RuntimeError: if the process exits first, or ``seconds`` pass; the message names the
            server (``name``) and ends with ``tail()``, the end of its log.
    """
    deadline = time.monotonic() + seconds
    while not _answers(f"{url}/models", headers):
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with status {process.returncode}:\n{tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not answer within {seconds:.0f} s:\n{tail()}")
        time.sleep(interval)


def _answers(url: str, headers: dict[str, str]) -> bool:
    """Whether GET ``url`` answers 200 within 2 seconds."""
    try:
        return httpx.get(url, headers=headers, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate the server; kill it if it has not exited after 20 seconds."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m attrib.testing.llama_server",
        description="Serve the embedded Gemma 3 270M through llama-cpp-python's OpenAI-compatible server.",
    )
    parser.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default 8080)")
    args = parser.parse_args()
    with llama_server(port=args.port) as server:
        print(f"serving {server.model} at {server.url} (Ctrl-C to stop)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
