"""The attribution result: units × output tokens, in nats.

Orientation, stated once: **rows are input units, columns are output tokens.**
``scores[i, t]`` is ``log p(y_t | x, y_<t) - log p(y_t | x without unit i, y_<t)``,
in nats; positive means the unit supports output token ``t``.

Results save to and load from JSON with a schema version (inseq's and captum's
lesson: people want to read them programmatically). Rendering lives in
``attrib.reports``; the data class only hands itself over.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from attrib.errors import ResultError
from attrib.segmentation import Unit

__all__ = ["Attribution", "Stats", "UnitScore", "SCHEMA_VERSION"]

#: Version of the JSON layout written by :meth:`Attribution.to_json`.
SCHEMA_VERSION = 1
_SCHEMA = "attrib.attribution"


@dataclass
class Stats:
    """What a run cost.

    Attributes:
        calls: scoring calls sent to the backend (distinct variants, the unperturbed
            prompt included; generation is not a scoring call).
        tokens_evaluated: tokens the backend computed after prefix reuse, generation included.
        seconds: wall time of the whole run.
        generated_tokens: tokens generated to obtain the output (0 when a target was given).
        reused: variant requests answered without a call (shared chunks, identical variants).
        budget: the call budget, or ``None``.
        budget_exhausted: True if the method stopped refining because the budget ran out.
        backend_usage: the backend's own counters for this run: for API backends
            ``requests`` sent, ``cache_hits``, ``retries``, ``prompt_tokens``,
            ``completion_tokens`` and ``bounded_tokens`` (see ``attrib.backends.openai``).
    """

    calls: int = 0
    tokens_evaluated: int = 0
    seconds: float = 0.0
    generated_tokens: int = 0
    reused: int = 0
    budget: int | None = None
    budget_exhausted: bool = False
    backend_usage: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class UnitScore:
    """One unit with its total attribution (nats) and its row index in ``scores``."""

    index: int
    unit: Unit
    score: float


@dataclass
class Attribution:
    """Token-level attribution of a model's output to the units of its prompt.

    Attributes:
        prompt: the prompt text that was attributed.
        units: the input units, in prompt order (rows of ``scores``).
        output: the output text that was explained.
        output_tokens: the output's tokens as text (columns of ``scores``).
        scores: attribution matrix, nats, float64, shape (n_units, n_output_tokens).
        method: ``"hipe"`` or ``"itp"``.
        level: unit level, one of ``token``, ``word``, ``sentence``, ``paragraph``.
        backend: description of the backend and model (never holds secrets).
        stats: cost of the run.
        output_token_ids: token ids of the output, shape (n_output_tokens,).
        base_logprobs: ``log p(y_t | x, y_<t)`` of the unperturbed prompt, nats,
            shape (n_output_tokens,).
        perturbation: how units were ablated (``{"name": "delete"}``, ...).
        parameters: the method's parameters (threshold, max depth, seed, ...).
        trace: method-specific record (for ``hipe``: every scored chunk), or ``None``.
        score_kind: ``"logprob"`` (scores are log-probability drops in nats) or
            ``"text-similarity"`` (text-only endpoints: the share of each output token
            lost from the regenerated text, in [-1, 1]; not nats).
        noise: the noise floor when it was measured (``noise_samples`` > 0): ``samples``,
            ``sd_per_token`` and ``sd_total`` of the unperturbed output's score over
            repeated requests, the ``threshold`` below which a unit's total is noise, and
            ``within_noise``, one boolean per unit. ``None`` when not measured.
        roles: for a chat prompt, each role's share of the messages' effect on the
            output's log-probability (role -> share, Shapley values; sums to 1). ``None``
            for a plain prompt.
        shapley: for a chat prompt, the messages' Shapley values behind ``roles``:
            ``values`` (per message and output token, nats, shape (n_messages,
            n_output_tokens)), ``message_totals`` (nats), ``exact`` (False when sampled),
            ``empty_logprobs`` (per output token with every message removed, nats) and
            ``coalitions`` (message subsets scored). Source: Shapley 1953; sampling after
            Castro et al. 2009 (see ``attrib.roles``).
        hidden_influence: for an audit (``attrib.audit``), the verdict on whether something
            the caller cannot see steers the output: ``flag``, ``score``, ``method`` and the
            ``indicators`` with their evidence (see ``attrib.audit``).
        messages: for a chat prompt, the messages as ``{"role", "content"}`` dicts; each
            unit's ``start``/``end`` then index its own message's ``content`` (``unit.message``).
            ``None`` for a plain prompt, whose units index ``prompt``.

    Raises:
        ResultError: on construction, if the shapes of the fields disagree or a unit's
            span does not match the text it points into.
    """

    prompt: str
    units: list[Unit]
    output: str
    output_tokens: list[str]
    scores: np.ndarray
    method: str
    level: str
    backend: dict[str, Any] = field(default_factory=dict)
    stats: Stats = field(default_factory=Stats)
    output_token_ids: list[int] | None = None
    base_logprobs: np.ndarray | None = None
    perturbation: dict[str, Any] = field(default_factory=lambda: {"name": "delete"})
    parameters: dict[str, Any] = field(default_factory=dict)
    trace: dict[str, Any] | None = None
    messages: list[dict[str, str]] | None = None
    score_kind: str = "logprob"
    noise: dict[str, Any] | None = None
    roles: dict[str, float] | None = None
    shapley: dict[str, Any] | None = None
    hidden_influence: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.units = list(self.units)
        self.output_tokens = list(self.output_tokens)
        self.scores = np.asarray(self.scores, dtype=np.float64)
        shape = (len(self.units), len(self.output_tokens))
        if self.scores.shape != shape:
            raise ResultError(
                f"scores have shape {self.scores.shape} but there are {shape[0]} units "
                f"and {shape[1]} output tokens (expected {shape})"
            )
        if self.base_logprobs is not None:
            self.base_logprobs = np.asarray(self.base_logprobs, dtype=np.float64)
            if self.base_logprobs.shape != (shape[1],):
                raise ResultError(
                    f"base_logprobs have shape {self.base_logprobs.shape}, expected ({shape[1]},)"
                )
        if self.output_token_ids is not None and len(self.output_token_ids) != shape[1]:
            raise ResultError(
                f"{len(self.output_token_ids)} output token ids for {shape[1]} output tokens"
            )
        if self.score_kind not in ("logprob", "text-similarity"):
            raise ResultError(f"unknown score_kind {self.score_kind!r} (expected 'logprob' or 'text-similarity')")
        if self.noise is not None and len(self.noise.get("within_noise", ())) != shape[0]:
            raise ResultError(f"noise.within_noise must hold one flag per unit ({shape[0]})")
        for index, unit in enumerate(self.units):
            if self.messages is None:
                source = self.prompt
            elif 0 <= unit.message < len(self.messages):
                source = self.messages[unit.message].get("content", "")
            else:
                raise ResultError(f"unit {index} belongs to message {unit.message}, but there are {len(self.messages)}")
            if source[unit.start : unit.end] != unit.text:
                raise ResultError(f"unit {index} ({unit.text!r}) does not match the text at {unit.start}-{unit.end}")

    # ----------------------------------------------------------------- reading

    @property
    def unit_scores(self) -> np.ndarray:
        """Total attribution of each unit over all output tokens, nats, shape (n_units,)."""
        return self.scores.sum(axis=1)

    @property
    def within_noise(self) -> np.ndarray | None:
        """True for units whose total attribution is inside the measured noise floor, shape (n_units,)."""
        return None if self.noise is None else np.asarray(self.noise["within_noise"], dtype=bool)

    @property
    def output_logprob(self) -> float | None:
        """``log p(y | x)`` of the whole output under the unperturbed prompt, nats."""
        return None if self.base_logprobs is None else float(self.base_logprobs.sum())

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
        """Attribution of every unit to output token ``token``, nats, shape (n_units,)."""
        return self.scores[:, token]

    def __repr__(self) -> str:
        return (
            f"Attribution(method={self.method!r}, level={self.level!r}, "
            f"units={len(self.units)}, output_tokens={len(self.output_tokens)}, "
            f"calls={self.stats.calls}, output={self.output!r})"
        )

    # ----------------------------------------------------------------- rendering

    def to_html(self, path: str | Path | None = None) -> str:
        """Render a self-contained HTML report (``attrib.reports.html``); write it to ``path`` when given.

        Returns:
            The HTML page.

        Raises:
            OSError: if ``path`` cannot be written.
        """
        from attrib.reports.html import render_html

        page = render_html(self)
        if path is not None:
            Path(path).write_text(page, encoding="utf-8")
        return page

    def _repr_html_(self) -> str:
        """Inline report for Jupyter (the page inside a sandboxed iframe)."""
        from attrib.reports.html import render_notebook

        return render_notebook(self)

    # ----------------------------------------------------------------- JSON

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary of the result (schema version :data:`SCHEMA_VERSION`)."""
        return {
            "schema": _SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "prompt": self.prompt,
            "units": [
                {
                    "text": u.text,
                    "start": u.start,
                    "end": u.end,
                    "role": u.role,
                    "message": u.message,
                    "tokens": list(u.tokens),
                }
                for u in self.units
            ],
            "output": self.output,
            "output_tokens": self.output_tokens,
            "output_token_ids": self.output_token_ids,
            "base_logprobs": _floats(self.base_logprobs) if self.base_logprobs is not None else None,
            "scores": [_floats(row) for row in self.scores],
            "unit_scores": _floats(self.unit_scores),
            "method": self.method,
            "level": self.level,
            "perturbation": self.perturbation,
            "parameters": self.parameters,
            "backend": self.backend,
            "stats": asdict(self.stats),
            "trace": self.trace,
            "messages": self.messages,
            "score_kind": self.score_kind,
            "noise": self.noise,
            "roles": self.roles,
            "shapley": self.shapley,
            "hidden_influence": self.hidden_influence,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attribution:
        """Rebuild a result from :meth:`to_dict` output.

        Raises:
            ResultError: if the data is not an attrib result of a known schema version,
                or its fields are missing or inconsistent.
        """
        if not isinstance(data, dict) or data.get("schema") != _SCHEMA:
            raise ResultError("not an attrib attribution result (missing schema 'attrib.attribution')")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ResultError(
                f"result has schema version {version!r}; this attrib reads version {SCHEMA_VERSION}"
            )
        try:
            units = [
                Unit(
                    text=u["text"],
                    start=int(u["start"]),
                    end=int(u["end"]),
                    role=u.get("role", "prompt"),
                    message=int(u.get("message", 0)),
                    tokens=tuple(u.get("tokens", (0, 0))),
                )
                for u in data["units"]
            ]
            n_output = len(data["output_tokens"])
            scores = np.asarray(data["scores"], dtype=np.float64).reshape(len(units), n_output)
            known = set(Stats.__dataclass_fields__)
            stats = Stats(**{k: v for k, v in data.get("stats", {}).items() if k in known})
            return cls(
                prompt=data["prompt"],
                units=units,
                output=data["output"],
                output_tokens=data["output_tokens"],
                scores=scores,
                method=data["method"],
                level=data["level"],
                backend=data.get("backend", {}),
                stats=stats,
                output_token_ids=data.get("output_token_ids"),
                base_logprobs=data.get("base_logprobs"),
                perturbation=data.get("perturbation", {"name": "delete"}),
                parameters=data.get("parameters", {}),
                trace=data.get("trace"),
                messages=data.get("messages"),
                score_kind=data.get("score_kind", "logprob"),
                noise=data.get("noise"),
                roles=data.get("roles"),
                shapley=data.get("shapley"),
                hidden_influence=data.get("hidden_influence"),
            )
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, ResultError):
                raise
            raise ResultError(f"malformed attribution result: {error}") from error

    def to_json(self, path: str | Path | None = None, *, indent: int | None = None) -> str:
        """Serialise to JSON; write it to ``path`` when given.

        Returns:
            The JSON text.

        Raises:
            OSError: if ``path`` cannot be written.
        """
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=indent, allow_nan=False)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    @classmethod
    def from_json(cls, source: str | Path) -> Attribution:
        """Load a result from a JSON file path (or from JSON text starting with ``{``).

        Raises:
            ResultError: if the content is not a valid attrib result.
            OSError: if the file cannot be read.
        """
        if isinstance(source, str) and source.lstrip().startswith("{"):
            text = source
        else:
            text = Path(source).read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ResultError(f"result is not valid JSON: {error}") from error
        return cls.from_dict(data)


def _floats(values: Sequence[float] | np.ndarray) -> list[float]:
    """Plain floats for JSON; non-finite values are refused rather than written as NaN."""
    out = [float(v) for v in values]
    if not all(math.isfinite(v) for v in out):
        raise ResultError("attribution contains non-finite values and cannot be written as JSON")
    return out
