"""The options of one attribution run, checked once, carried as one frozen value.

Every entry point (:func:`attrib.attribute`, :func:`attrib.audit`,
:func:`attrib.plan`, the command line) builds a :class:`RunOptions` with
:meth:`RunOptions.build`, which resolves names through :mod:`attrib.registry` and
refuses a bad value before any model is loaded or called: a finished run never
dies on an option it accepted.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any

from attrib import registry
from attrib.errors import BudgetError, InputError
from attrib.perturbation import Perturbation
from attrib.scheduler import Scheduler
from attrib.segmentation import check_level

__all__ = ["RunOptions", "check_contrast", "check_count", "check_number"]


def check_count(name: str, value: object, *, minimum: int = 0, error: type[InputError] = InputError) -> int:
    """``value`` as an int of at least ``minimum``.

    Raises:
        InputError (or ``error``): naming the option, for anything else (bools, floats,
            strings, smaller numbers).
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise error(f"{name} must be at least {minimum}, got {value}")
    return value


def check_number(name: str, value: object, *, minimum: float | None = None) -> float:
    """``value`` as a finite float (at least ``minimum`` when given).

    Raises:
        InputError: naming the option, for NaN, infinities, non-numbers and smaller values.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and number < minimum:
        raise InputError(f"{name} must be at least {minimum}, got {value!r}")
    return number


def check_contrast(contrast: object, target: str | None) -> None:
    """A contrast must be non-empty text that differs from the target (when the target is known).

    Raises:
        InputError: for a contrast that is not a string, is empty, or equals the target.
    """
    if contrast is None:
        return
    if not isinstance(contrast, str):
        raise InputError(f"contrast must be a string, got {type(contrast).__name__}")
    if not contrast.strip():
        raise InputError("contrast is empty; pass the alternative output to explain against, or omit it")
    if target is not None and contrast == target:
        raise InputError(f"contrast {contrast!r} equals the target; pass a different alternative output")


def _scheduler(name: str, seed: int) -> Scheduler:
    """The method registered as ``name``; a method that samples gets the run's seed."""
    takes_seed = "seed" in inspect.signature(registry.methods.resolve(name)).parameters
    return registry.methods.create(name, **({"seed": seed} if takes_seed else {}))


def _check_recordable(what: str, description: dict[str, object]) -> None:
    """A method's or perturbation's parameters must be finite numbers and plain values: they are
    recorded in the result, and a run must never finish only to fail writing it.

    Raises:
        InputError: naming the first parameter that is NaN or infinite.
    """

    def walk(value: object, path: str) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"{what} parameter {path} must be a finite number, got {value}")
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(inner, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list | tuple):
            for index, inner in enumerate(value):
                walk(inner, f"{path}[{index}]")

    walk(description, "")


@dataclass(frozen=True)
class RunOptions:
    """What to compute, independent of the prompt and the backend.

    Attributes:
        method: the attribution method (a scheduler: HiPe, ItP, ...).
        level: unit level: ``token``, ``word``, ``sentence`` or ``paragraph``.
        target: the output text to explain, or ``None`` to generate it greedily.
        max_new_tokens: tokens to generate when ``target`` is ``None``.
        budget: maximum scoring calls (the unperturbed prompt, noise samples and message
            coalitions included), or ``None``.
        seed: seed of every random choice (sampled coalitions).
        perturbation: how ablated units become variants.
        noise_samples: extra scores of the unperturbed prompt for the noise floor.
        chat_template: a jinja2 chat template overriding the model's, or ``None``.
        contrast: a foil to explain the output against (contrastive attribution: the
            scores are drops of ``log p(target | x) - log p(contrast | x)``), or ``None``.
    """

    method: Scheduler
    perturbation: Perturbation
    level: str = "token"
    target: str | None = None
    max_new_tokens: int = 16
    budget: int | None = None
    seed: int = 0
    noise_samples: int = 0
    chat_template: str | None = None
    contrast: str | None = None

    @classmethod
    def build(
        cls,
        *,
        method: str | Scheduler = "hipe",
        level: str = "token",
        target: str | None = None,
        max_new_tokens: int = 16,
        budget: int | None = None,
        seed: int = 0,
        perturbation: str | Perturbation = "delete",
        noise_samples: int = 0,
        chat_template: str | None = None,
        contrast: str | None = None,
    ) -> RunOptions:
        """Check every option and resolve names (method, perturbation) through the registry.

        Raises:
            UnknownNameError: for an unknown method, level or perturbation (with a "did you mean").
            BudgetError: for a budget below 2 calls.
            InputError: for an empty target, a non-positive ``max_new_tokens`` without a
                target, a negative ``noise_samples``, an empty contrast or one equal to the
                target, or a value of the wrong type.
        """
        check_count("seed", seed)
        scheduler = method if isinstance(method, Scheduler) else _scheduler(method, seed)
        perturb = registry.perturbations.instance(perturbation)
        check_level(level)
        _check_recordable("method", scheduler.describe())
        _check_recordable("perturbation", perturb.describe())
        if target is not None:
            if not isinstance(target, str):
                raise InputError(f"target must be a string, got {type(target).__name__}")
            if target == "":
                raise InputError("target is empty; pass the output text to explain, or omit it to generate")
        else:
            check_count("max_new_tokens", max_new_tokens, minimum=1)
        if budget is not None:
            check_count("budget", budget, minimum=2, error=BudgetError)
        check_count("noise_samples", noise_samples)
        check_contrast(contrast, target)
        if chat_template is not None and not chat_template.strip():
            raise InputError("the chat template is empty; give a jinja2 template, or omit it to use the model's")
        return cls(
            method=scheduler,
            perturbation=perturb,
            level=level,
            target=target,
            max_new_tokens=max_new_tokens,
            budget=budget,
            seed=seed,
            noise_samples=noise_samples,
            chat_template=chat_template,
            contrast=contrast,
        )

    def parameters(self, *, generated: bool, template: str | None = None) -> dict[str, Any]:
        """The method's parameters as recorded in a result (JSON-ready)."""
        recorded: dict[str, Any] = {**self.method.describe(), "seed": self.seed}
        if template is not None:
            recorded["chat_template"] = template
        if generated:
            recorded["max_new_tokens"] = self.max_new_tokens
        return recorded
