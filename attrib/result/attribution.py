"""The attribution result: units × output tokens, in the result's score unit (nats for log-probabilities).

Orientation, stated once: **rows are input units, columns are output tokens.**
``scores[i, t]`` is ``log p(y_t | x, y_<t) - log p(y_t | x without unit i, y_<t)``,
in nats; positive means the unit supports output token ``t``. A contrastive result
(``contrast`` set) has the contrast's tokens as further columns, scored so that
positive means the unit favours the output over the contrast (see :class:`Contrast`).

Results save to and load from JSON with a schema version (inseq's and captum's
lesson: people want to read them programmatically); the layout is published as a
JSON Schema (``attrib/result/attribution.schema.json``). Rendering lives in
``attrib.reports``; the data class only hands itself over.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np

from attrib.errors import ResultError
from attrib.result.codec import JSON, MATRIX, VECTOR, decode, encode, field_hints
from attrib.result.context import Claim, Context, judge
from attrib.result.files import parse_json, read_json, write_atomic
from attrib.result.legacy import OLDEST_VERSION, upgrade
from attrib.result.parts import (
    Contrast,
    HiddenInfluence,
    MessageShapley,
    MethodTrace,
    NoiseFloor,
    Stats,
    Trace,
    UnitScore,
)
from attrib.segmentation import Unit

__all__ = ["Attribution", "SCHEMA", "SCHEMA_VERSION", "SCORE_UNITS"]

#: Version of the JSON layout written by :meth:`Attribution.to_json` (3 added ``context``).
SCHEMA_VERSION = 3
#: The ``schema`` key of every result file.
SCHEMA = "attrib.attribution"
#: The unit of the scores of each ``score_kind``.
SCORE_UNITS = {"logprob": "nats", "text-similarity": "similarity"}

_Matrix = Annotated[np.ndarray, MATRIX]
_Vector = Annotated[np.ndarray, VECTOR]


@dataclass(frozen=True, eq=False)
class Attribution:
    """Token-level attribution of a model's output to the units of its prompt.

    Frozen: derive a changed copy with ``dataclasses.replace`` (it is validated again).
    The parts may be given as their typed classes or as plain dicts of the same keys,
    which are checked and converted.

    Attributes:
        prompt: the prompt text that was attributed (for a chat, the rendered template).
        units: the input units, in prompt order (rows of ``scores``).
        output: the output text that was explained.
        output_tokens: the output's tokens as text (columns of ``scores``); with a
            contrast, the contrast's tokens follow from ``contrast.start`` on.
        scores: attribution matrix, float64, shape (n_units, n_output_tokens), in
            :attr:`score_unit`.
        method: ``"hipe"`` or ``"itp"``.
        level: unit level, one of ``token``, ``word``, ``sentence``, ``paragraph``.
        backend: description of the backend and model (never holds secrets).
        stats: cost of the run.
        output_token_ids: token ids of the output, shape (n_output_tokens,).
        base_logprobs: ``log p(y_t | x, y_<t)`` of the unperturbed prompt, nats,
            shape (n_output_tokens,) (a contrast's columns: its own tokens' log-probabilities).
        perturbation: how units were ablated (``{"name": "delete"}``, ...).
        parameters: the method's parameters (threshold, max depth, seed, ...).
        trace: HiPe's record of every scored chunk (:class:`Trace`), another method's own
            record (:class:`MethodTrace`), or ``None``.
        messages: for a chat prompt, the messages as ``{"role", "content"}`` dicts; each
            unit's ``start``/``end`` then index its own message's ``content`` (``unit.message``).
            ``None`` for a plain prompt, whose units index ``prompt``.
        score_kind: ``"logprob"`` (scores are log-probability drops in nats) or
            ``"text-similarity"`` (text-only endpoints: the share of each output token
            lost from the regenerated text, in [-1, 1]; not nats).
        noise: the noise floor when it was measured (``noise_samples`` > 0), else ``None``.
        roles: for a chat prompt, each role's share of the messages' effect on the
            output's log-probability (role -> share, Shapley values; sums to 1). ``None``
            for a plain prompt.
        shapley: for a chat prompt, the messages' Shapley values behind ``roles``.
        hidden_influence: for an audit (``attrib.audit``), the verdict on whether something
            the caller cannot see steers the output.
        contrast: for a contrastive attribution, the foil and where its columns start
            (:class:`Contrast`); ``unit_scores`` and ``top`` are then the contrastive scores,
            drops of ``log p(output | x) - log p(contrast | x)`` in nats. ``None`` otherwise
            (and the key is left out of the JSON).
        context: for a context attribution (:func:`attrib.cite`), the sources, the answer's
            claims and their verdicts (:class:`~attrib.result.context.Context`); units then lie
            inside sources and index ``prompt``. ``None`` otherwise (the key is left out of the JSON).

    Raises:
        ResultError: on construction, if a field has the wrong type, the shapes of the
            fields disagree, or a unit's span does not match the text it points into.
    """

    prompt: str
    units: list[Unit]
    output: str
    output_tokens: list[str]
    scores: _Matrix
    method: str
    level: str
    backend: dict[str, JSON] = field(default_factory=dict)
    stats: Stats = field(default_factory=Stats)
    output_token_ids: list[int] | None = None
    base_logprobs: _Vector | None = None
    perturbation: dict[str, JSON] = field(default_factory=lambda: {"name": "delete"})
    parameters: dict[str, JSON] = field(default_factory=dict)
    trace: Trace | MethodTrace | None = None
    messages: list[dict[str, str]] | None = None
    score_kind: Literal["logprob", "text-similarity"] = "logprob"
    noise: NoiseFloor | None = None
    roles: dict[str, float] | None = None
    shapley: MessageShapley | None = None
    hidden_influence: HiddenInfluence | None = None
    contrast: Contrast | None = None
    context: Context | None = None

    def __post_init__(self) -> None:
        hints = field_hints(type(self))
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, decode(hints[f.name], getattr(self, f.name), f.name))
        n_units, n_tokens = len(self.units), len(self.output_tokens)
        if self.scores.size == 0 and n_units * n_tokens == 0:  # [] read from JSON: no rows or no columns
            object.__setattr__(self, "scores", self.scores.reshape(n_units, n_tokens))
        if self.scores.shape != (n_units, n_tokens):
            raise ResultError(
                f"scores have shape {self.scores.shape} but there are {n_units} units "
                f"and {n_tokens} output tokens (expected {(n_units, n_tokens)})"
            )
        _check_lengths(self, n_units, n_tokens)
        if self.contrast is not None and not 1 <= self.contrast.start < n_tokens:
            raise ResultError(
                f"contrast.start is {self.contrast.start}; the contrast's columns must start within the "
                f"{n_tokens} output tokens, after at least one of the output's"
            )
        for index, unit in enumerate(self.units):
            source = self._source(unit, index)
            if not 0 <= unit.start <= unit.end or source[unit.start : unit.end] != unit.text:
                raise ResultError(f"unit {index} ({unit.text!r}) does not match the text at {unit.start}-{unit.end}")
        if isinstance(self.trace, Trace):
            _check_trace(self.trace, len(self.prompt), None if self.messages is None else len(self.messages))
        if self.context is not None:
            _check_context(self)

    def _source(self, unit: Unit, index: int) -> str:
        if self.messages is None:
            return self.prompt
        if 0 <= unit.message < len(self.messages):
            return self.messages[unit.message]["content"]
        raise ResultError(f"unit {index} belongs to message {unit.message}, but there are {len(self.messages)}")

    # ----------------------------------------------------------------- reading

    @property
    def score_unit(self) -> str:
        """The unit of ``scores``: ``"nats"`` for log-probabilities, ``"similarity"`` for text similarity."""
        return SCORE_UNITS[self.score_kind]

    @property
    def unit_scores(self) -> np.ndarray:
        """Total attribution of each unit over all output tokens, shape (n_units,), in :attr:`score_unit`."""
        totals: np.ndarray = self.scores.sum(axis=1)
        return totals

    @property
    def within_noise(self) -> np.ndarray | None:
        """True for units whose total attribution is inside the measured noise floor, shape (n_units,)."""
        return None if self.noise is None else np.array(self.noise.within_noise, dtype=bool)

    @property
    def output_columns(self) -> slice:
        """The columns of the output's own tokens (all columns without a contrast)."""
        return slice(0, len(self.output_tokens) if self.contrast is None else self.contrast.start)

    @property
    def contrast_columns(self) -> slice:
        """The columns of the contrast's tokens (an empty slice without a contrast)."""
        n = len(self.output_tokens)
        return slice(n if self.contrast is None else self.contrast.start, n)

    @property
    def output_logprob(self) -> float | None:
        """``log p(y | x)`` of the whole output under the unperturbed prompt, nats."""
        return None if self.base_logprobs is None else float(self.base_logprobs[self.output_columns].sum())

    @property
    def contrast_logprob(self) -> float | None:
        """``log p(contrast | x)`` under the unperturbed prompt, nats; ``None`` without a contrast."""
        if self.contrast is None or self.base_logprobs is None:
            return None
        return float(self.base_logprobs[self.contrast_columns].sum())

    def source_text(self, unit: Unit) -> str:
        """The text ``unit.start``/``unit.end`` index: its message's content in a chat, else the prompt."""
        return self.prompt if self.messages is None else self.messages[unit.message]["content"]

    def top(self, k: int = 10, *, absolute: bool = False) -> list[UnitScore]:
        """The ``k`` units with the largest total attribution.

        Args:
            k: how many units to return (fewer if there are fewer units).
            absolute: rank by magnitude, so units that lower the output's
                probability (negative scores) rank too.

        Returns:
            :class:`UnitScore` items, most influential first; ties keep prompt order.
        """
        totals = self.unit_scores
        key = np.abs(totals) if absolute else totals
        order = sorted(range(len(totals)), key=lambda i: (-key[i], i))[: max(0, k)]
        return [UnitScore(i, self.units[i], float(totals[i])) for i in order]

    def column(self, token: int) -> np.ndarray:
        """Attribution of every unit to output token ``token``, shape (n_units,), in :attr:`score_unit`."""
        return self.scores[:, token]

    # ----------------------------------------------------------------- context attribution

    @property
    def claims(self) -> list[Claim]:
        """The answer's claims with their sources and verdicts (:func:`attrib.cite`); ``[]`` for other results."""
        return [] if self.context is None else list(self.context.claims)

    @property
    def answer(self) -> str:
        """The answer the claims index: ``output`` from ``context.answer_start`` on (``output`` without a context)."""
        return self.output if self.context is None else self.output[self.context.answer_start :]

    def claim(self, start: int, end: int, *, cited: list[str] | None = None) -> Claim:
        """Attribute any span of the answer to the sources, as a claim (no model call).

        The span's columns are the output tokens that overlap ``answer[start:end]``, citation
        markers' tokens left out; its attribution to a source is the sum of ``scores`` over the
        source's rows and those columns, in nats, judged by the result's support rule
        (:mod:`attrib.result.context`: each source alone against none, from the run's probes).

        Args:
            start, end: character span in :attr:`answer`, half-open, ``0 <= start < end <= len(answer)``.
            cited: the source ids cited for the span (default: none).

        Raises:
            InputError: for a result without a context, or a span outside the answer.
        """
        from attrib.errors import InputError

        context = self.context
        if context is None:
            raise InputError("this result has no sources; claims need a result of attrib.cite")
        answer = self.answer
        if isinstance(start, bool) or isinstance(end, bool) or not isinstance(start, int) or not isinstance(end, int):
            raise InputError(f"a claim span is two whole numbers, got {start!r}, {end!r}")
        if not 0 <= start < end <= len(answer):
            raise InputError(
                f"claim span {start}-{end} is outside the answer's {len(answer)} characters; give 0 <= start < end"
            )
        return judge(
            text=answer[start:end],
            start=start,
            end=end,
            **_claim_columns(self, start, end),
            source_rows=[(source.id, source.units) for source in context.sources],
            scores=self.scores,
            support=context.support,
            cited=list(cited or []),
            noise_sd=None if self.noise is None else np.asarray(self.noise.sd_per_token),
            samples=0 if self.noise is None else self.noise.samples,
            empty=None if context.empty_logprobs is None else np.asarray(context.empty_logprobs, dtype=float),
            alone=None if context.alone_logprobs is None else np.asarray(context.alone_logprobs, dtype=float),
            inside=None
            if context.inside_logprobs is None
            else {
                key: np.asarray(rows, dtype=float).reshape(-1, len(self.output_tokens))
                for key, rows in context.inside_logprobs.items()
            },
        )

    def to_frame(self) -> Any:
        """The claims × sources table: one row per claim (its text as index), one column per
        source id, values in nats (the claim's attribution to the source).

        Raises:
            BackendUnavailableError: if pandas is not installed (``pip install "attrib[frame]"``).
            InputError: for a result without a context.
        """
        from attrib.errors import BackendUnavailableError, InputError

        if self.context is None:
            raise InputError("this result has no sources; the claims × sources table needs a result of attrib.cite")
        try:
            import pandas as pd
        except ImportError:
            raise BackendUnavailableError('to_frame needs pandas: pip install "attrib[frame]"') from None
        ids = self.context.ids
        rows = [[dict(claim.sources).get(source, 0.0) for source in ids] for claim in self.context.claims]
        index = pd.Index([claim.text for claim in self.context.claims], name="claim")
        return pd.DataFrame(rows, index=index, columns=pd.Index(ids, name="source"), dtype=float)

    def __repr__(self) -> str:
        return (
            f"Attribution(method={self.method!r}, level={self.level!r}, "
            f"units={len(self.units)}, output_tokens={len(self.output_tokens)}, "
            f"calls={self.stats.calls}, output={self.output!r})"
        )

    # ----------------------------------------------------------------- rendering

    def to_html(self, path: str | Path | None = None) -> str:
        """Render a self-contained HTML report (``attrib.reports.html``); write it to ``path`` when given.

        The file is written whole or not at all (see :func:`attrib.result.files.write_atomic`).

        Returns:
            The HTML page.

        Raises:
            OSError: if ``path`` cannot be written.
        """
        from attrib.reports.html import render_html  # on use: the core imports no report module at import time

        page = render_html(self)
        if path is not None:
            write_atomic(path, page)
        return page

    def _repr_html_(self) -> str:
        """Inline report for Jupyter (the page inside a sandboxed iframe)."""
        from attrib.reports.html import render_notebook  # on use, as in to_html

        return render_notebook(self)

    # ----------------------------------------------------------------- JSON

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary of the result (schema version :data:`SCHEMA_VERSION`), written from the fields.

        Raises:
            ResultError: if a number is NaN or infinite.
        """
        data: dict[str, Any] = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION}
        for f in dataclasses.fields(self):
            if f.name in ("contrast", "context") and getattr(self, f.name) is None:
                continue  # files without a contrast or a context stay as earlier versions wrote them
            data[f.name] = encode(getattr(self, f.name))
            if f.name == "scores":
                data["unit_scores"] = encode(self.unit_scores)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Attribution:
        """Rebuild a result from :meth:`to_dict` output (schema version 3, or 1 and 2 from earlier attrib).

        Every field is checked against its type, and the whole against its shapes.

        Raises:
            ResultError: if the data is not an attrib result of a known schema version,
                or a field is missing, unknown, of the wrong type or inconsistent.
        """
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise ResultError("not an attrib attribution result (missing schema 'attrib.attribution')")
        if data.get("schema_version") == 2 and "context" in data:
            raise ResultError("a version-2 result has no 'context'; the file is damaged or mislabelled")
        data = upgrade(data)
        version = data.get("schema_version")
        if type(version) is not int or version != SCHEMA_VERSION:
            raise ResultError(
                f"result has schema version {version!r}; this attrib reads versions {OLDEST_VERSION} to {SCHEMA_VERSION}"
            )
        fields = {key: value for key, value in data.items() if key not in ("schema", "schema_version", "unit_scores")}
        if "unit_scores" in data:
            decode(_Vector, data["unit_scores"], "unit_scores")
        result: Attribution = decode(cls, fields, "")
        return result

    def to_json(self, path: str | Path | None = None, *, indent: int | None = None) -> str:
        """Serialise to JSON; write it to ``path`` when given (whole or not at all).

        Returns:
            The JSON text.

        Raises:
            ResultError: if a number is NaN or infinite.
            OSError: if ``path`` cannot be written.
        """
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=indent, allow_nan=False)
        if path is not None:
            write_atomic(path, text + "\n")
        return text

    @classmethod
    def from_json(cls, source: str | Path) -> Attribution:
        """Load a result from a JSON file path (or from JSON text starting with ``{``).

        Raises:
            ResultError: if the content is not UTF-8, not JSON, or not a valid attrib result.
            OSError: if the file cannot be read.
        """
        if isinstance(source, str) and source.lstrip().startswith("{"):
            return cls.from_dict(parse_json(source))
        return cls.from_dict(read_json(source))


def _check_lengths(result: Attribution, n_units: int, n_tokens: int) -> None:
    """The per-unit and per-token fields hold one entry per unit and per output token."""
    checks: list[tuple[str, int | None, int]] = [
        ("base_logprobs", None if result.base_logprobs is None else result.base_logprobs.size, n_tokens),
        ("output_token_ids", None if result.output_token_ids is None else len(result.output_token_ids), n_tokens),
        ("noise.within_noise", None if result.noise is None else len(result.noise.within_noise), n_units),
        ("noise.sd_per_token", None if result.noise is None else len(result.noise.sd_per_token), n_tokens),
    ]
    if result.base_logprobs is not None and result.base_logprobs.ndim != 1:
        raise ResultError(f"base_logprobs have shape {result.base_logprobs.shape}, expected ({n_tokens},)")
    if result.shapley is not None:
        checks.append(("shapley.empty_logprobs", len(result.shapley.empty_logprobs), n_tokens))
        checks.extend((f"shapley.values[{i}]", len(row), n_tokens) for i, row in enumerate(result.shapley.values))
        if result.messages is not None:
            checks.append(("shapley.values", len(result.shapley.values), len(result.messages)))
            checks.append(("shapley.message_totals", len(result.shapley.message_totals), len(result.messages)))
    for name, found, expected in checks:
        if found is not None and found != expected:
            raise ResultError(f"{name} holds {found} values, expected {expected}")
    for index, message in enumerate(result.messages or []):
        if set(message) != {"role", "content"}:
            raise ResultError(f"messages[{index}] must hold exactly 'role' and 'content', not {sorted(message)}")


def _check_trace(trace: Trace, n_chars: int, n_messages: int | None) -> None:
    """Every chunk's spans, depth, parent and message point inside the result."""
    for index, chunk in enumerate(trace.chunks):
        where = f"trace.chunks[{index}]"
        if not 0 <= chunk.start <= chunk.end:
            raise ResultError(f"{where} spans tokens {chunk.start}-{chunk.end}, which is not a span")
        if not 0 <= chunk.char_start <= chunk.char_end <= n_chars:
            raise ResultError(
                f"{where} spans {chunk.char_start}-{chunk.char_end}, outside the prompt's {n_chars} characters"
            )
        if not 0 <= chunk.depth < max(trace.depths, 1):
            raise ResultError(f"{where} has depth {chunk.depth}, outside the trace's {trace.depths} depths")
        if chunk.parent is not None and not 0 <= chunk.parent < len(trace.chunks):
            raise ResultError(f"{where} names parent {chunk.parent}, but there are {len(trace.chunks)} chunks")
        if chunk.message is not None and (n_messages is None or not 0 <= chunk.message < n_messages):
            raise ResultError(f"{where} lies in message {chunk.message}, which the result does not have")


def _claim_columns(result: Attribution, start: int, end: int) -> dict[str, Any]:
    """The output-token columns a span of the answer covers, and which of them count (not markers)."""
    context = result.context
    assert context is not None  # callers check
    offset = context.answer_start
    lo, hi = start + offset, end + offset
    spans = context.token_spans
    inside = [i for i, (a, b) in enumerate(spans) if a < hi and b > lo]
    if not inside:
        return {"tokens": (0, 0), "keep": np.zeros(0, dtype=bool)}
    first, last = inside[0], inside[-1] + 1
    markers = [(a + offset, b + offset) for a, b in context.marker_spans]
    keep = np.array([not any(a < mb and b > ma for ma, mb in markers) for a, b in spans[first:last]], dtype=bool)
    return {"tokens": (first, last), "keep": keep}


def _check_context(result: Attribution) -> None:
    """The context's sources, claims and token spans point inside the result."""
    context = result.context
    assert context is not None
    n_units, n_output = len(result.units), result.output_columns.stop
    ids = [source.id for source in context.sources]
    if len(set(ids)) != len(ids):
        raise ResultError("context.sources repeat an id")
    for index, source in enumerate(context.sources):
        where = f"context.sources[{index}]"
        if not 0 <= source.units[0] <= source.units[1] <= n_units:
            raise ResultError(f"{where} spans rows {source.units[0]}-{source.units[1]}, outside the {n_units} units")
        if not 0 <= source.start <= source.end <= len(result.prompt):
            raise ResultError(f"{where} spans {source.start}-{source.end}, outside the prompt")
    if len(context.token_spans) != n_output:
        raise ResultError(f"context.token_spans holds {len(context.token_spans)} spans, expected {n_output}")
    if not 0 <= context.answer_start <= len(result.output):
        raise ResultError(f"context.answer_start {context.answer_start} lies outside the output")
    if (context.empty_logprobs is None) != (context.alone_logprobs is None):
        raise ResultError("context has one of empty_logprobs and alone_logprobs without the other")
    if context.empty_logprobs is not None and len(context.empty_logprobs) != n_output:
        raise ResultError(f"context.empty_logprobs holds {len(context.empty_logprobs)} values, expected {n_output}")
    if context.alone_logprobs is not None:
        shape = [len(row) for row in context.alone_logprobs]
        if len(shape) != len(ids) or any(n != n_output for n in shape):
            raise ResultError(f"context.alone_logprobs is not {len(ids)} rows of {n_output} values")
    answer = len(result.output) - context.answer_start
    for index, claim in enumerate(context.claims):
        where = f"context.claims[{index}]"
        if not 0 <= claim.start <= claim.end <= answer:
            raise ResultError(f"{where} spans {claim.start}-{claim.end}, outside the answer's {answer} characters")
        if not 0 <= claim.tokens[0] <= claim.tokens[1] <= n_output:
            raise ResultError(f"{where} covers columns {claim.tokens[0]}-{claim.tokens[1]}, outside the output")
