"""What the local backends say when a model cannot be loaded, and two processes converting one GGUF at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from attrib.backend import load_backend
from attrib.errors import ModelNotFoundError

# ---------------------------------------------------------------------------- llama: a directory


def test_llama_given_a_directory_names_the_gguf_file_inside(tmp_path: Path) -> None:
    (tmp_path / "gemma.gguf").write_bytes(b"GGUF")
    (tmp_path / "README.md").write_text("weights")
    with pytest.raises(ModelNotFoundError) as caught:
        load_backend("llama", model=str(tmp_path))
    message = str(caught.value)
    assert "is a directory" in message and str(tmp_path / "gemma.gguf") in message
    assert "not found" not in message


def test_llama_given_a_directory_without_gguf_says_so(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="is a directory with no .gguf file"):
        load_backend("llama", model=str(tmp_path))
    (tmp_path / "a.gguf").write_bytes(b"GGUF")
    (tmp_path / "b.gguf").write_bytes(b"GGUF")
    with pytest.raises(ModelNotFoundError, match=r"one of the \.gguf files inside it \(a\.gguf, b\.gguf\)"):
        load_backend("llama", model=str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="model file not found"):
        load_backend("llama", model=str(tmp_path / "missing.gguf"))


def test_the_command_line_says_it_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "gemma.gguf").write_bytes(b"GGUF")
    run = subprocess.run(
        [sys.executable, "-m", "attrib", "explain", "Paris", "--model", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0 and run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith("attrib: error: ") and "is a directory" in run.stderr


# ---------------------------------------------------------------------------- transformers


@pytest.mark.torch
@pytest.mark.parametrize("option", ["device", "dtype"])
def test_transformers_takes_none_as_the_default_device_and_dtype(tmp_path: Path, option: str) -> None:
    pytest.importorskip("transformers")
    # A missing file: the options are checked first, so None must get past them to this error.
    with pytest.raises(ModelNotFoundError, match="GGUF file not found"):
        load_backend("transformers", model=str(tmp_path / "missing.gguf"), **{option: None})


@pytest.mark.torch
def test_a_hub_name_fails_at_once_when_the_hub_cannot_be_reached(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    env = {
        **os.environ,
        "HF_HOME": str(tmp_path / "hf"),  # an empty Hub cache
        "HF_ENDPOINT": "http://127.0.0.1:9",  # nothing listens on the discard port
        "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH")])),
    }
    env.pop("HF_HUB_OFFLINE", None)
    code = (
        "import time, attrib\n"
        "from attrib.backend import load_backend\n"
        "start = time.monotonic()\n"
        "try:\n"
        "    load_backend('transformers', model='attrib-tests/no-such-model', device='cpu')\n"
        "except attrib.AttribError as error:\n"
        "    print(type(error).__name__, time.monotonic() - start, error)\n"
    )
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    elapsed = time.monotonic() - started
    kind, seconds, message = run.stdout.split(" ", 2)
    assert kind == "ModelNotFoundError", run.stdout + run.stderr
    assert "Hugging Face Hub (http://127.0.0.1:9) cannot be reached" in message
    assert "local model directory or .gguf file" in message and "\n" not in message.strip()
    # The Hub client's own retries took about 50 s here; one check takes at most HUB_TIMEOUT.
    assert float(seconds) < 15, (seconds, elapsed)


@pytest.mark.torch
def test_a_cached_hub_name_is_loaded_without_the_network_when_the_hub_cannot_be_reached(tmp_path: Path) -> None:
    pytest.importorskip("huggingface_hub")
    snapshot = tmp_path / "hf" / "hub" / "models--attrib-tests--cached" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    code = (
        "from attrib.backends.transformers.loading import Source, hub_files_only\n"
        "print(hub_files_only(Source('attrib-tests/cached', None, False, 'attrib-tests/cached')))\n"
        "try:\n"
        "    hub_files_only(Source('attrib-tests/other', None, False, 'attrib-tests/other'))\n"
        "except Exception as error:\n"
        "    print(type(error).__name__)\n"
    )
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": "http://127.0.0.1:9"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH")]))
    env.pop("HF_HUB_OFFLINE", None)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert run.stdout.split() == ["True", "ModelNotFoundError"], run.stdout + run.stderr


# ---------------------------------------------------------------------------- the converted copy


def test_a_copy_another_process_landed_first_is_success(tmp_path: Path) -> None:
    from attrib.backends.transformers.loading import _land

    target = tmp_path / "gemma-0123"
    for name in ("ours", "theirs"):
        staging = tmp_path / f"gemma-0123.{name}"
        staging.mkdir()
        (staging / "config.json").write_text(json.dumps({"by": name}))
        (staging / "model.safetensors").write_bytes(b"x")
    assert _land(tmp_path / "gemma-0123.theirs", target) is True
    assert _land(tmp_path / "gemma-0123.ours", target) is False  # "Directory not empty": theirs is kept
    assert json.loads((target / "config.json").read_text()) == {"by": "theirs"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gemma-0123"]  # our staging copy is gone


def test_a_target_that_is_not_a_finished_copy_is_still_an_error(tmp_path: Path) -> None:
    from attrib.backends.transformers.loading import _land

    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "stray").write_text("")
    (tmp_path / "staging").mkdir()
    (tmp_path / "staging" / "config.json").write_text("{}")
    with pytest.raises(OSError):
        _land(tmp_path / "staging", tmp_path / "target")


LOAD = """
import json, logging, sys, time
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
from attrib.backends.transformers import TransformersBackend
backend = TransformersBackend(device="cpu")
ids = backend.tokenize("The capital of Japan is").ids
print(json.dumps({"ids": list(ids), "source": backend.source.label}))
"""


@pytest.mark.torch
@pytest.mark.model
def test_two_processes_converting_the_embedded_model_at_once_keep_one_copy(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    cache = tmp_path / "cache"
    env = {
        **os.environ,
        "ATTRIB_CACHE_DIR": str(cache),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH")])),
    }
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", LOAD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=1200) for run in runs]
    for run, (_out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err[-2000:]
        assert "could not keep a converted copy" not in err, err[-2000:]
    assert json.loads(outputs[0][0]) == json.loads(outputs[1][0])
    kept = [p for p in (cache / "transformers").iterdir() if not p.name.startswith(".")]
    assert len(kept) == 1 and (kept[0] / "config.json").is_file(), kept  # one copy, no staging left
    # A third process finds the copy and converts nothing.
    third = subprocess.run([sys.executable, "-c", LOAD], capture_output=True, text=True, timeout=600, env=env)
    assert third.returncode == 0 and json.loads(third.stdout) == json.loads(outputs[0][0]), third.stderr[-2000:]
    assert sorted(p.name for p in (cache / "transformers").iterdir() if not p.name.startswith(".")) == [kept[0].name]


@pytest.mark.torch
@pytest.mark.model
def test_a_cache_directory_that_cannot_be_written_still_loads_the_model(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = {**os.environ, "ATTRIB_CACHE_DIR": str(blocker / "cache")}  # under a file: no directory can be made
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH")]))
    run = subprocess.run([sys.executable, "-c", LOAD], capture_output=True, text=True, timeout=900, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout)["ids"] and "could not keep a converted copy" in run.stderr
