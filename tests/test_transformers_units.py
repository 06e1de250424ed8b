"""Pieces of the transformers backend that need no model: offsets, sources, lazy imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from attrib.backends.transformers.loading import resolve_source
from attrib.backends.transformers.tokenizer import _spans_and_edges
from attrib.errors import ModelNotFoundError


def test_offsets_that_skip_a_leading_space_are_widened_to_cover_the_text():
    # " world" trimmed to (6, 11) by a tokenizer with trim_offsets: the space belongs to it.
    spans, edges = _spans_and_edges([(0, 5), (6, 11)], 11)
    assert spans == ((0, 5), (5, 11))
    assert edges == (0, 1, 2)


def test_byte_tokens_of_one_character_share_its_span_and_allow_no_cut_inside():
    # "a日": "日" is three byte-fallback tokens, each reported with the character's span.
    spans, edges = _spans_and_edges([(0, 1), (1, 2), (1, 2), (1, 2)], 2)
    assert spans == ((0, 1), (1, 2), (1, 2), (1, 2))
    assert edges == (0, 1, 4)


def test_a_missing_local_model_is_reported_by_path(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not found"):
        resolve_source(tmp_path / "missing.gguf", None)
    with pytest.raises(ModelNotFoundError, match="config.json"):
        resolve_source(tmp_path, None)
    assert resolve_source("google/gemma-3-270m", None).local is False


def test_importing_attrib_and_the_backend_module_imports_no_torch():
    code = (
        "import sys, attrib, attrib.backends.transformers; print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.split() == ["False", "False"]
