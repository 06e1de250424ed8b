"""The run options, declared once: names, types, defaults, help, where each applies.

Every surface reads the declaration below instead of listing the options again:

* the Python API: :func:`attrib.attribute`, :func:`attrib.plan`, :func:`attrib.audit` and
  :func:`attrib.attribute_many` take ``**options: Unpack[ExplainOptions]`` (or
  :class:`AuditOptions`), so a type checker checks every keyword, and
  :func:`with_options` shows the options with their defaults in ``help()``;
* :meth:`RunOptions.build` fills the defaults and checks every value, once, before any
  model is loaded or called: a finished run never dies on an option it accepted;
* the command line (:mod:`attrib.cli.flags`): one flag per option on every command it
  applies to, with its metavar, choices (live registry listings) and default;
* a batch (:mod:`attrib.batch`): the options each task takes run-wide and the ones a
  record may set for itself (:func:`batch_names`, :func:`record_names`).

The declaration is a :class:`~typing.TypedDict` per task whose keys carry an
:class:`Option` in :data:`~typing.Annotated` metadata; its type is what callers may
pass. A new option is one key here (and a field of :class:`RunOptions`, where the
pipeline reads it) plus its use.

:data:`PARAMETERS` declares the same way the methods' and perturbations' own
parameters that the command line sets (``--threshold`` for ``hipe``, ``--baseline``
for ``replace``); the Python API takes an instance instead (``HiPe(threshold=...)``).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import math
import textwrap
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypedDict, TypeVar, Union, Unpack, get_args, get_origin, get_type_hints

from attrib import registry
from attrib.context.citations import DEFAULT_MARKERS
from attrib.context.template import CONTEXT_LEVELS, check_context_level
from attrib.errors import BudgetError, InputError
from attrib.methods.base import Scheduler
from attrib.perturbation import Perturbation
from attrib.segmentation import LEVELS, check_level

__all__ = [
    "Option",
    "Parameter",
    "RunOptionsDict",
    "ExplainOptions",
    "AuditOptions",
    "RunOptions",
    "TASKS",
    "BATCH_TASKS",
    "ITEM_TASKS",
    "CiteOptions",
    "PARAMETERS",
    "options",
    "default",
    "batch_names",
    "run_names",
    "record_names",
    "with_options",
    "Default",
    "declared_settings",
    "settings",
    "listing",
    "check_contrast",
    "check_count",
    "check_number",
]

#: A live listing of accepted names (a registry's ``names``), or a fixed one.
Choices = Callable[[], Sequence[str]] | Sequence[str]


@dataclass(frozen=True)
class Option:
    """How one run option shows on every surface; its name and type are its key in the declaration.

    Attributes:
        default: its value when not given (for every task but those in ``task_defaults``).
        help: what it does, one line (``--help`` and the docstrings; the default is added).
        detail: more for the Python docstrings, or ``""``.
        metavar: the flag's placeholder (``"N"``), or ``None`` (the choices are shown).
        choices: the accepted names: a live listing such as ``registry.methods.names``.
        task_defaults: defaults that differ by task: task -> value (``{"audit": "sentence"}``).
        task_choices: accepted names that differ by task: task -> choices (``cite`` adds the
            ``source`` level).
        group: where the flag stands in ``--help``: ``"output"`` (what to explain),
            ``"method"`` or ``"chat"``.
        commands: the commands with a flag for it; ``None``: every command of its tasks
            (``batch`` included unless ``batch`` is ``"none"``).
        batch: ``"run"``: a batch takes it run-wide; ``"record"``: a record may also set it
            in its ``options``; ``"none"``: neither (a record carries it as its own key).
        reads_file: the flag names a file whose text is the value.
        not_for: tasks whose declaration inherits it but that do not take it (``cite`` takes
            its answer as an argument of its own, not as ``target``).
        name: its name (filled in from the declaration's key).
        tasks: the tasks that take it (filled in: those whose declaration holds it).
    """

    default: object
    help: str
    detail: str = ""
    metavar: str | None = None
    choices: Choices | None = None
    task_defaults: Mapping[str, object] = field(default_factory=dict)
    task_choices: Mapping[str, Choices] = field(default_factory=dict)
    group: Literal["output", "method", "chat"] = "method"
    commands: frozenset[str] | None = None
    batch: Literal["run", "record", "none"] = "run"
    reads_file: bool = False
    not_for: frozenset[str] = frozenset()
    name: str = ""
    tasks: frozenset[str] = frozenset()

    def default_for(self, task: str) -> object:
        """The default for ``task`` (``"explain"``, ``"audit"``)."""
        return self.task_defaults.get(task, self.default)

    def names(self, task: str | None = None) -> list[str] | None:
        """The accepted names now for ``task`` (a registry's listing is read at each call), or ``None``."""
        return listing(self.task_choices.get(task, self.choices) if task is not None else self.choices)

    def flag_type(self) -> Callable[[str], Any]:
        """What turns the flag's text into the value: ``int`` or ``float`` when the type allows it, else ``str``."""
        allowed = _types()[self.name]
        return next((kind for kind in (int, float) if kind in allowed), str)


def listing(choices: Choices | None) -> list[str] | None:
    """The names ``choices`` gives now (a live listing is called), or ``None``."""
    if choices is None:
        return None
    return list(choices() if callable(choices) else choices)


_CONTRAST = (
    "explain the output against this alternative (contrastive attribution): scores are drops of "
    "log p(output) - log p(contrast), in nats; positive means the unit favours the output"
)


class RunOptionsDict(TypedDict, total=False):
    """The run options every task takes (:func:`attrib.attribute`, :func:`attrib.audit`, a batch, the dry run)."""

    method: Annotated[
        str | Scheduler,
        Option(
            "hipe",
            "attribution method: hipe (hierarchical perturbation), itp (exhaustive leave-one-out), or a "
            "coalition method",
            detail='or a scheduler instance such as ``HiPe(threshold="relative")``',
            choices=registry.methods.names,
            batch="record",
        ),
    ]
    level: Annotated[
        str,
        Option(
            "token",
            "unit level",
            detail="a backend without the model's tokenizer turns ``token`` into ``word`` (with a warning)",
            choices=LEVELS,
            task_defaults={"audit": "sentence", "cite": "source"},
            task_choices={"cite": CONTEXT_LEVELS},
            batch="record",
        ),
    ]
    target: Annotated[
        str | None,
        Option(
            None,
            "output text to explain (default: generate it greedily)",
            metavar="TEXT",
            group="output",
            batch="none",
            not_for=frozenset({"cite"}),
        ),
    ]
    contrast: Annotated[
        str | None,
        Option(
            None,
            _CONTRAST,
            detail="after Yin & Neubig 2022, for every method; the contrast is split jointly with the prompt "
            "like a target, and each variant is scored on both (see docs/contrast.md)",
            metavar="TEXT",
            group="output",
            not_for=frozenset({"cite"}),
        ),
    ]
    max_new_tokens: Annotated[
        int,
        Option(
            16,
            "tokens to generate when no target is given",
            metavar="N",
            group="output",
            batch="record",
            task_defaults={"cite": 64},
        ),
    ]
    budget: Annotated[
        int | None,
        Option(
            None,
            "maximum scoring calls, the unperturbed prompt, noise samples and message coalitions included "
            "(default: no limit)",
            detail="calls answered from a cache count too, so a re-run follows the same schedule",
            metavar="N",
            batch="record",
        ),
    ]
    seed: Annotated[
        int, Option(0, "seed of every random choice (sampled coalitions); recorded", metavar="N", batch="record")
    ]
    chat_template: Annotated[
        str | None,
        Option(
            None,
            "jinja2 chat template for a chat (default: the model's, else Gemma turns)",
            metavar="FILE",
            group="chat",
            commands=frozenset({"audit", "batch", "cite"}),
            reads_file=True,
        ),
    ]


class ExplainOptions(RunOptionsDict, total=False):
    """The run options of :func:`attrib.attribute` and :func:`attrib.plan`: every task's, and these."""

    perturbation: Annotated[
        str | Perturbation,
        Option(
            "delete",
            "how ablated units change: delete them, or replace their tokens by a baseline token",
            detail="or a perturbation instance",
            choices=registry.perturbations.names,
        ),
    ]
    noise_samples: Annotated[
        int,
        Option(
            0,
            "score the unperturbed prompt K more times and mark units within the spread, for endpoints "
            "that are not deterministic",
            detail="see :func:`attrib.noise.noise_floor`",
            metavar="K",
        ),
    ]


class AuditOptions(RunOptionsDict, total=False):
    """The run options of :func:`attrib.audit`: every task's (none of its own yet)."""


class CiteOptions(ExplainOptions, total=False):
    """The run options of :func:`attrib.cite`: explain's, and how claims and citations are judged."""

    support: Annotated[
        float,
        Option(
            0.4,
            "a source supports a claim when, given alone, it supplies more than this share of the claim's "
            "information (its surprisal without any source, nats), and more than the noise floor when measured",
            detail="a share in [0, 1): one parameter, so a calibration split can set it; the default was "
            "calibrated on the context benchmark's calibration cases only (docs/guides/cite.md); see "
            ":mod:`attrib.result.context`",
            metavar="SHARE",
            commands=frozenset({"cite", "batch"}),
        ),
    ]
    markers: Annotated[
        str | None,
        Option(
            DEFAULT_MARKERS,
            "regular expression of the answer's citation markers; its first non-empty group holds the cited "
            "ids, comma-separated; '' turns the citation check off",
            detail="the default reads ``[2]``, ``[S3]``, ``[1, 3]`` and ``(source 1)``; ``None`` turns it off",
            metavar="REGEX",
            commands=frozenset({"cite", "batch"}),
        ),
    ]


#: Each task's declaration.
TASKS: dict[str, type[RunOptionsDict]] = {"explain": ExplainOptions, "audit": AuditOptions, "cite": CiteOptions}
#: The tasks a batch runs (``attrib batch --task``).
BATCH_TASKS: tuple[str, ...] = ("explain", "audit", "cite")
#: The tasks of a batch's items by the run's task: a record's shape chooses between those
#: (a record with ``sources`` is a cite item, any other a prompt or chat of the run's task).
ITEM_TASKS: dict[str, tuple[str, ...]] = {"explain": ("explain", "cite"), "audit": ("audit",), "cite": ("cite",)}


@dataclass(frozen=True)
class Parameter:
    """A method's or perturbation's own parameter that the command line sets; the Python API passes
    an instance instead (``method=HiPe(threshold="midrange")``).

    Attributes:
        name: the flag's name (``max_depth`` is ``--max-depth``).
        kind: the run option it belongs to: ``"method"`` or ``"perturbation"``.
        applies_to: the names of that kind that take it (``("hipe",)``).
        help: what it does, one line (the class's own default is added).
        keyword: the constructor's keyword, when it differs from ``name``.
        type: what turns the flag's text into the value.
        metavar: the flag's placeholder, or ``None`` (the choices are shown).
        choices: the accepted names (a registry's live listing), or ``None``.
    """

    name: str
    kind: Literal["method", "perturbation"]
    applies_to: tuple[str, ...]
    help: str
    keyword: str = ""
    type: Callable[[str], Any] = str
    metavar: str | None = None
    choices: Choices | None = None

    @property
    def argument(self) -> str:
        """The constructor's keyword."""
        return self.keyword or self.name

    def default(self) -> object:
        """The class's own default (imports the first class it applies to), or ``None``."""
        found = inspect.signature(registry.of(self.kind).resolve(self.applies_to[0])).parameters.get(self.argument)
        return None if found is None or found.default is inspect.Parameter.empty else found.default


#: The methods' and perturbations' parameters the command line sets.
PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        "threshold",
        "method",
        ("hipe",),
        "refinement rule: relative (10% of the depth's largest chunk drop, at least 0.5 nats), "
        "midrange (HiPe's original rule), or a number of nats",
        metavar="RULE",
    ),
    Parameter(
        "max_depth", "method", ("hipe",), "deepest refinement depth (default: down to --level)", type=int, metavar="N"
    ),  # fmt: skip
    Parameter(
        "order",
        "method",
        ("hipe",),
        "best-first, the most salient chunk first (with --budget it reaches single units in the salient "
        "region sooner), or depth by depth as in the original HiPe",
        choices=registry.orders.names,
    ),
    Parameter(
        "early_stop",
        "method",
        ("hipe",),
        "stop refining once no unrefined chunk could change the top K units",
        keyword="top_k",
        type=int,
        metavar="K",
    ),
    Parameter("baseline", "perturbation", ("replace",), "the replacement token", metavar="TEXT"),
)


@functools.cache
def _declared() -> dict[str, Option]:
    """Every option, in declaration order, its name and tasks filled in."""
    found: dict[str, Option] = {}
    for task, declaration in TASKS.items():
        for name, hint in get_type_hints(declaration, include_extras=True).items():
            option = next(extra for extra in get_args(hint)[1:] if isinstance(extra, Option))
            known = found.get(name, dataclasses.replace(option, name=name))
            if task not in option.not_for:
                found[name] = dataclasses.replace(known, tasks=known.tasks | {task})
            else:
                found[name] = known
    return found


@functools.cache
def _types() -> dict[str, tuple[type, ...]]:
    """Each option's accepted types (``int | None`` is ``(int, NoneType)``)."""
    found: dict[str, tuple[type, ...]] = {}
    for declaration in TASKS.values():
        for name, hint in get_type_hints(declaration).items():
            found[name] = get_args(hint) if get_args(hint) and get_origin(hint) is not Literal else (hint,)
    return found


def options(task: str | None = None) -> dict[str, Option]:
    """The options ``task`` takes (``"explain"``, ``"audit"``; ``"plan"`` is explain's), or every option.

    Raises:
        KeyError: for an unknown task.
    """
    task = "explain" if task == "plan" else task
    if task is not None and task not in TASKS:
        raise KeyError(task)
    return {name: option for name, option in _declared().items() if task is None or task in option.tasks}


def default(name: str, task: str = "explain") -> Any:
    """The declared default of option ``name`` for ``task``."""
    return _declared()[name].default_for(task)


def batch_names(task: str) -> frozenset[str]:
    """The options items of ``task`` take run-wide in a batch (a record's target is its own key, not an option)."""
    return frozenset(name for name, option in options(task).items() if option.batch != "none")


def run_names(task: str) -> frozenset[str]:
    """The options a batch run of ``task`` takes run-wide: those of its items' tasks (:data:`ITEM_TASKS`;
    an explain run's cite items take ``support`` and ``markers``), each applied to the items that take it."""
    return frozenset().union(*(batch_names(item_task) for item_task in ITEM_TASKS[task]))


def record_names() -> frozenset[str]:
    """The options a batch record may set for itself in its ``options``."""
    return frozenset(name for name, option in _declared().items() if option.batch == "record")


def type_text(name: str) -> str:
    """Option ``name``'s type as written: ``"int | None"``."""
    return " | ".join(_text(kind) for kind in _types()[name])


def _text(hint: object) -> str:
    """A type as written: ``"int | None"``, ``"os.PathLike[str]"``."""
    if get_origin(hint) in (Union, types.UnionType):
        return " | ".join(_text(kind) for kind in get_args(hint))
    if hint is type(None):
        return "None"
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Default:
    """The declaration of one key of a settings :class:`~typing.TypedDict` (``Annotated[int, Default(4)]``):
    its default, which :func:`with_options` shows in a signature and :func:`settings` fills in, and,
    when it has ``help``, its command-line flag (built by :mod:`attrib.cli.flags`).

    Attributes:
        value: the default.
        help: the flag's help, one line; ``""``: no flag of its own (the command sets the key).
        metavar: the flag's placeholder (``"N"``), or ``None``.
        choices: the accepted values, or ``None``.
        flag: the flag's name when it is not the key's (``skip_bad`` is ``--skip-bad-lines``).
        needs: ``(key, value)``: the setting applies only when that other key has that value
            (``("executor", "ray")``); its flag given otherwise is an error.
    """

    value: object
    help: str = ""
    metavar: str | None = None
    choices: Sequence[str] | None = None
    flag: str = ""
    needs: tuple[str, object] | None = None


def declared_settings(declaration: type) -> dict[str, tuple[Default, tuple[type, ...]]]:
    """Each key of the settings ``declaration``, in order: its :class:`Default` and its accepted
    types (``int | None`` is ``(int, NoneType)``)."""
    hints = get_type_hints(declaration, include_extras=True)
    found: dict[str, tuple[Default, tuple[type, ...]]] = {}
    for name, hint in hints.items():
        base, *extras = get_args(hint)
        kinds = get_args(base) if get_origin(base) in (Union, types.UnionType) else (base,)
        found[name] = (next(m for m in extras if isinstance(m, Default)), kinds)
    return found


def settings(declaration: type, given: Mapping[str, object]) -> dict[str, Any]:
    """Every key of the settings ``declaration`` from ``given``, or its :class:`Default`."""
    return {name: given.get(name, value) for name, value in _defaults(declaration).items()}


def _defaults(declaration: type) -> dict[str, object]:
    hints = get_type_hints(declaration, include_extras=True)
    return {name: next(m.value for m in get_args(hint)[1:] if isinstance(m, Default)) for name, hint in hints.items()}


def with_options(task: str, *, batch: bool = False, before: type | None = None) -> Callable[[F], F]:
    """Show ``task``'s options (with ``batch``, those a batch takes run-wide) in the decorated
    function's ``help()``: its ``**options`` become one keyword-only parameter per option with
    its default in the signature (after the keys of the settings ``before``, with their
    :class:`Default`), and a "Run options" section (each option's help and default) goes
    before the docstring's ``Returns:``."""

    def decorate(function: F) -> F:
        signature = inspect.signature(function)
        kept = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        keyword = inspect.Parameter.KEYWORD_ONLY
        first = (
            []
            if before is None
            else [
                inspect.Parameter(name, keyword, default=value, annotation=_text(get_type_hints(before)[name]))
                for name, value in _defaults(before).items()
            ]
        )
        added = [
            inspect.Parameter(name, keyword, default=option.default_for(task), annotation=type_text(name))
            for name, option in options(task).items()
            if not batch or name in batch_names(task)
        ]  # fmt: skip
        function.__signature__ = signature.replace(parameters=[*kept, *first, *added])  # type: ignore[attr-defined]
        doc = function.__doc__ or ""
        where = doc.find("\n    Returns:")
        where = len(doc.rstrip()) if where < 0 else where
        function.__doc__ = doc[:where] + "\n" + _section(task, batch=batch) + doc[where:]
        return function

    return decorate


def _section(task: str, *, batch: bool) -> str:
    """The docstring section listing ``task``'s options (with ``batch``, its run-wide ones)."""
    lines = [f"    Run options (:class:`attrib.options.{TASKS['explain' if task == 'plan' else task].__name__}`):"]
    for name, option in options(task).items():
        if batch and name not in batch_names(task):
            continue
        text = option.help + (f"; {option.detail}" if option.detail else "")
        value = option.default_for(task)
        text = f"{name}: {text}." + ("" if value is None else f" Default ``{value!r}``.")
        lines.append(
            textwrap.fill(text, 96, initial_indent=" " * 8, subsequent_indent=" " * 12, break_on_hyphens=False)
        )
    return "\n".join(lines) + "\n"


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
    """The run options, checked and resolved: what to compute, independent of the prompt and the backend.

    Built by :meth:`build` only; each field is the declared option of that name
    (:class:`ExplainOptions`), with ``method`` and ``perturbation`` resolved to instances.
    """

    method: Scheduler
    perturbation: Perturbation
    level: str
    target: str | None
    max_new_tokens: int
    budget: int | None
    seed: int
    noise_samples: int
    chat_template: str | None
    contrast: str | None
    support: float
    markers: str | None

    @classmethod
    def build(cls, *, task: str = "explain", **given: Unpack[CiteOptions]) -> RunOptions:
        """Fill ``task``'s defaults, check every option and resolve names (method, perturbation)
        through the registry.

        Raises:
            TypeError: for an option ``task`` does not take (as for an unknown keyword).
            UnknownNameError: for an unknown method, level or perturbation (with a "did you mean").
            BudgetError: for a budget below 2 calls.
            InputError: for an empty target, a non-positive ``max_new_tokens`` without a
                target, a negative ``noise_samples``, an empty contrast or one equal to the
                target, or a value of the wrong type.
        """
        allowed = options(task)
        unknown = [name for name in given if name not in allowed]
        if unknown:
            close = difflib.get_close_matches(unknown[0], allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (options: {', '.join(allowed)})"
            raise TypeError(f"{task} takes no option {unknown[0]!r}{hint}")
        values: dict[str, Any] = {name: option.default_for(task) for name, option in _declared().items()}
        values.update(given)
        seed = check_count("seed", values["seed"])
        method = values["method"]
        scheduler = method if isinstance(method, Scheduler) else _scheduler(method, seed)
        perturb = registry.perturbations.instance(values["perturbation"])
        if task == "cite":
            check_context_level(values["level"])
            if check_number("support", values["support"], minimum=0.0) >= 1.0:
                raise InputError(f"support is a share of the claim's information, below 1; got {values['support']!r}")
            if values["markers"] is not None and not isinstance(values["markers"], str):
                raise InputError(f"markers must be a regular expression (a string) or None, got {values['markers']!r}")
        else:
            check_level(values["level"])
        _check_recordable("method", scheduler.describe())
        _check_recordable("perturbation", perturb.describe())
        target = values["target"]
        if target is not None:
            if not isinstance(target, str):
                raise InputError(f"target must be a string, got {type(target).__name__}")
            if target == "":
                raise InputError("target is empty; pass the output text to explain, or omit it to generate")
        else:
            check_count("max_new_tokens", values["max_new_tokens"], minimum=1)
        if values["budget"] is not None:
            check_count("budget", values["budget"], minimum=2, error=BudgetError)
        check_count("noise_samples", values["noise_samples"])
        check_contrast(values["contrast"], target)
        template = values["chat_template"]
        if template is not None and not template.strip():
            raise InputError("the chat template is empty; give a jinja2 template, or omit it to use the model's")
        values["support"] = float(values["support"])
        return cls(**{**values, "method": scheduler, "perturbation": perturb})

    def parameters(self, *, generated: bool, template: str | None = None) -> dict[str, Any]:
        """The method's parameters as recorded in a result (JSON-ready)."""
        recorded: dict[str, Any] = {**self.method.describe(), "seed": self.seed}
        if template is not None:
            recorded["chat_template"] = template
        if generated:
            recorded["max_new_tokens"] = self.max_new_tokens
        return recorded
