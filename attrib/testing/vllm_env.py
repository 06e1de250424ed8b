"""Where vLLM's CPU build and the checkpoint it serves live, and how the checkpoint is made.

``.ci/vllm-env`` installs vLLM in a virtual environment of its own (vLLM pins its
own torch and transformers) and calls :func:`prepare_model` with the calling
Python, which has attrib and its ``[torch]`` extra. vLLM 0.32 has no GGUF loader,
so the embedded GGUF is dequantized by the transformers backend's own loading code
(:func:`attrib.backends.transformers.loading.load`, which keeps a float32 copy under
attrib's cache directory) and copied next to the environment with a chat template
(:data:`attrib.chat.DEFAULT_TEMPLATE` after ``<bos>``: vLLM's chat route adds no
BOS of its own, and answers 400 without a template).

Layout under :func:`env_dir`: ``bin/vllm`` (the environment), ``model/`` (the
checkpoint, with ``attrib-model.stamp`` saying what it was made from).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import platformdirs

__all__ = ["CHAT_TEMPLATE", "env_dir", "model_dir", "prepare_model"]

#: The chat template written into the served checkpoint: Gemma's turns after ``<bos>``.
CHAT_TEMPLATE_PREFIX = "{{ bos_token }}"

#: Bump when the model layout changes: checkpoints made before are made again.
MODEL_LAYOUT = "1"


def _template() -> str:
    from attrib.chat import DEFAULT_TEMPLATE

    return CHAT_TEMPLATE_PREFIX + DEFAULT_TEMPLATE


CHAT_TEMPLATE = _template()


def env_dir() -> Path:
    """The vLLM environment: ``$ATTRIB_VLLM_ENV``, else ``vllm-env`` in attrib's user cache
    directory (platformdirs' ``user_cache_dir``; ``$ATTRIB_CACHE_DIR`` is not read, so tests
    with a private cache still find the shared environment)."""
    configured = os.environ.get("ATTRIB_VLLM_ENV")
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_cache_dir("attrib", appauthor=False)) / "vllm-env"


def model_dir() -> Path:
    """The float32 checkpoint vLLM serves: ``model/`` in :func:`env_dir`."""
    return env_dir() / "model"


def prepare_model(target: Path) -> bool:
    """Make ``target`` the embedded model as a float32 checkpoint with :data:`CHAT_TEMPLATE`.

    Nothing is done when ``target``'s stamp names the same converted copy, layout and
    template. Returns whether the checkpoint was (re)made.

    Raises:
        BackendUnavailableError: if torch, transformers or gguf is missing.
        ModelNotFoundError: if the embedded model cannot be loaded.
        OSError: if ``target`` cannot be written.
    """
    from attrib.backends.transformers import loading

    source = loading.resolve_source(None, None)
    converted = loading._conversion_dir(source)
    if converted is None:  # pragma: no cover - the embedded model is always a local GGUF
        raise RuntimeError("the embedded model has no converted copy")
    want = {"converted": converted.name, "layout": MODEL_LAYOUT, "chat_template": CHAT_TEMPLATE}
    stamp = target / "attrib-model.stamp"
    if stamp.is_file() and json.loads(stamp.read_text(encoding="utf-8")) == want:
        return False
    if not (converted / "config.json").is_file():
        torch, _ = loading.require()
        loading.load(source, device="cpu", dtype=torch.float32)
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(converted, staging)
    (staging / "chat_template.jinja").write_text(CHAT_TEMPLATE, encoding="utf-8")
    (staging / "attrib-model.stamp").write_text(json.dumps(want), encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m attrib.testing.vllm_env",
        description="Print the vLLM environment's directory, or make its float32 checkpoint (--model).",
    )
    parser.add_argument("--model", action="store_true", help="make (or reuse) the checkpoint in ENV/model")
    args = parser.parse_args()
    if not args.model:
        print(env_dir())
        return
    target = model_dir()
    made = prepare_model(target)
    print(f"{'made' if made else 'reusing'} {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
