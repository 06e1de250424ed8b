"""Start vLLM's OpenAI-compatible server (CPU build) with the embedded model on loopback.

Used by the tests marked ``vllm`` and by ``benchmarks/vllm_rungs.py``. vLLM runs
from the environment ``bash .ci/vllm-env`` installs (:mod:`attrib.testing.vllm_env`),
serving the embedded Gemma 3 270M as a float32 checkpoint with a chat template. Run
it by hand with ``python -m attrib.testing.vllm_server`` to try ``--backend openai``
against vLLM.

The server is started as vLLM's CPU build needs on a small machine: float32, eager
mode (no graph compilation), a 2,048-token context, 1 GiB of KV cache
(``VLLM_CPU_KVCACHE_SPACE``), its threads bound to the first ``threads`` cores, and
no network (``HF_HUB_OFFLINE``); and with ``--trust-request-chat-template``, without
which vLLM refuses the ``chat_template`` attrib sends for a user's template. It takes about a minute to answer and several GB of
memory, so a test session starts one.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx

from attrib.testing.llama_server import Server, free_port, wait_until_ready
from attrib.testing.vllm_env import env_dir, model_dir

__all__ = ["MODEL_NAME", "VllmNotInstalledError", "vllm_server", "vllm_command"]

#: The name the model is served under.
MODEL_NAME = "gemma3-270m"


class VllmNotInstalledError(RuntimeError):
    """The vLLM environment or its checkpoint is missing: run ``bash .ci/vllm-env``."""


def vllm_command(*, port: int, api_key: str | None = None, max_model_len: int = 2048) -> list[str]:
    """The ``vllm serve`` command line for the embedded model on ``127.0.0.1:port``.

    Raises:
        VllmNotInstalledError: if the environment or the checkpoint is missing.
    """
    executable, model = env_dir() / "bin" / "vllm", model_dir()
    if not executable.is_file() or not (model / "config.json").is_file():
        raise VllmNotInstalledError(
            f"no vLLM environment with the embedded model in {env_dir()}: run bash .ci/vllm-env "
            "(or set ATTRIB_VLLM_ENV to one it made)"
        )
    options = {
        "--served-model-name": MODEL_NAME,
        "--host": "127.0.0.1",
        "--port": str(port),
        "--dtype": "float32",
        "--max-model-len": str(max_model_len),
    }
    if api_key:
        options["--api-key"] = api_key
    # vLLM refuses a chat_template in a request (400) unless told to trust it.
    flags = ["--enforce-eager", "--trust-request-chat-template"]
    return [str(executable), "serve", str(model), *itertools.chain.from_iterable(options.items()), *flags]


@contextlib.contextmanager
def vllm_server(
    *,
    port: int | None = None,
    api_key: str | None = None,
    log_path: Path | None = None,
    threads: int = 2,
    kv_cache_gib: int = 1,
    startup_seconds: float = 600.0,
    warm_up: bool = True,
) -> Iterator[Server]:
    """Run vLLM with the embedded Gemma 3 270M for the duration of the ``with`` block.

    Args:
        port: the loopback port; a free one when ``None``.
        api_key: the key the server requires, if any.
        log_path: where the server's output goes (discarded when ``None``).
        threads: cores its threads are bound to (``0`` to ``threads - 1``).
        kv_cache_gib: the KV cache's size, GiB.
        startup_seconds: how long to wait for it to answer.
        warm_up: send one short completion before yielding (the first request is slow).

    Raises:
        VllmNotInstalledError: if ``bash .ci/vllm-env`` has not been run.
        RuntimeError: if the server exits or does not answer within ``startup_seconds``
            (the message holds the end of its log).
    """
    port = port or free_port()
    command = vllm_command(port=port, api_key=api_key)
    environment = {
        **os.environ,
        "VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gib),
        "VLLM_CPU_OMP_THREADS_BIND": f"0-{max(threads, 1) - 1}",
        "HF_HUB_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }
    for name in ("PYTHONPATH", "VIRTUAL_ENV", "ATTRIB_CACHE_DIR"):  # the environment is self-contained
        environment.pop(name, None)
    url = f"http://127.0.0.1:{port}/v1"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def tail() -> str:
        return log_path.read_text(errors="replace")[-3000:] if log_path is not None else "(no log kept)"

    with contextlib.ExitStack() as stack:
        log: IO[bytes] | int = subprocess.DEVNULL
        if log_path is not None:
            log = stack.enter_context(log_path.open("wb"))
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=environment, start_new_session=True
        )
        stack.callback(_stop, process)
        wait_until_ready(process, url, headers, name="vllm serve", seconds=startup_seconds, tail=tail, interval=1.0)
        if warm_up:
            body = {"model": MODEL_NAME, "prompt": "The capital of France is", "max_tokens": 1, "temperature": 0}
            httpx.post(f"{url}/completions", json=body, headers=headers, timeout=300).raise_for_status()
        yield Server(url=url, key=api_key, model=MODEL_NAME, pid=process.pid)  # its process group's id too


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server and the engine processes it started (its own process group):
    SIGTERM, then SIGKILL after 30 seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    with contextlib.suppress(ProcessLookupError):  # engine processes that outlived the server
        os.killpg(process.pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m attrib.testing.vllm_server",
        description="Serve the embedded Gemma 3 270M through vLLM's OpenAI-compatible server "
        "(CPU build; install it first with bash .ci/vllm-env).",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--api-key", default=None, help="require this API key")
    parser.add_argument("--threads", type=int, default=2, help="cores to bind vLLM's threads to (default 2)")
    parser.add_argument("--log", type=Path, default=None, help="write the server's output to this file")
    args = parser.parse_args()
    # Stopped by SIGTERM too (a background job ignores Ctrl-C): leave through the with-block,
    # which stops vLLM's engine processes instead of orphaning them.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(0))
    try:
        with vllm_server(
            port=args.port or None, api_key=args.api_key, log_path=args.log, threads=args.threads
        ) as server:
            print(server.url, flush=True)
            print(f"serving {server.model} through vLLM (Ctrl-C to stop)", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
    except (VllmNotInstalledError, RuntimeError) as error:
        raise SystemExit(f"attrib: error: {error}") from None


if __name__ == "__main__":
    main()
