"""Segmentation: character spans, token alignment and nesting of the four levels."""

from __future__ import annotations

import itertools
import random

import pytest

from attrib.backends.toy import ToyBackend
from attrib.errors import TokenizationError, UnknownNameError
from attrib.segmentation import LEVELS, Segmentation, Tokenization, check_level

TEXT = (
    "The first paragraph has two sentences. Dr. smith wrote this one!\n\n"
    "Second paragraph: it starts after a blank line.\nA new line starts a sentence.  "
)


def _pieces(text: str, cuts: list[int]) -> list[bytes]:
    data = text.encode("utf-8")
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def test_spans_and_edges_follow_characters_when_a_token_splits_one():
    text = "aé b"  # 'é' is two bytes: split it across two tokens
    pieces = _pieces(text, [1, 2, 3])  # b"a", b"\xc3", b"\xa9", b" b"
    tokens = Tokenization.from_pieces(text, [10, 11, 12, 13], pieces)
    assert tokens.spans == ((0, 1), (1, 2), (1, 2), (2, 4))
    assert tokens.edges == (0, 1, 3, 4)  # no edge inside the character
    units = Segmentation(tokens).units("token")
    assert [u.text for u in units] == ["a", "é", " b"]
    assert units[1].tokens == (1, 3)


def test_pieces_that_do_not_reproduce_the_text_are_refused():
    with pytest.raises(TokenizationError):
        Tokenization.from_pieces("abc", [1, 2], [b"a", b"bd"])


def test_word_sentence_and_paragraph_units():
    seg = Segmentation(ToyBackend().tokenize(TEXT))
    words = [u.text for u in seg.units("word")]
    assert words[:3] == ["The", " first", " paragraph"]
    assert " sentences." in words
    assert words[-1] == "  "  # trailing whitespace is its own unit
    sentences = [u.text for u in seg.units("sentence")]
    assert sentences[0] == "The first paragraph has two sentences."
    # "Dr." followed by a lowercase word does not end a sentence
    assert sentences[1] == " Dr. smith wrote this one!"
    assert sentences[2].startswith("\n\nSecond paragraph")
    assert sentences[3] == "\nA new line starts a sentence.  "
    paragraphs = [u.text for u in seg.units("paragraph")]
    assert len(paragraphs) == 2
    assert paragraphs[1].startswith("\n\nSecond")


@pytest.mark.parametrize("seed", range(25))
def test_levels_nest_cover_the_text_and_keep_exact_spans(seed):
    rng = random.Random(seed)
    vocabulary = ["alpha", "Beta", "gamma.", "Delta!", "extraordinarily", "é", "日本", "x?", "(quote)", "—"]
    separators = [" ", " ", " ", "  ", "\n", "\n\n", "\t"]
    text = "".join(rng.choice(vocabulary) + rng.choice(separators) for _ in range(rng.randint(1, 60)))
    seg = Segmentation(ToyBackend().tokenize(text))
    for finer, coarser in itertools.pairwise(LEVELS):
        assert set(seg.boundaries(coarser)) <= set(seg.boundaries(finer))
    for level in LEVELS:
        units = seg.units(level)
        assert "".join(u.text for u in units) == text
        for unit in units:
            assert text[unit.start : unit.end] == unit.text
            assert unit.n_tokens >= 1


def test_unknown_level_suggests_the_closest_name():
    with pytest.raises(UnknownNameError, match="did you mean 'word'"):
        check_level("words")
