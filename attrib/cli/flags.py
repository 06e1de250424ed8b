"""The run options' command-line flags, built from their declaration in :mod:`attrib.options`.

Every command (``explain``, ``audit``, ``batch``) gets one flag per option that
applies to it, with the option's metavar, choices (live registry listings), type
and default, and the methods' and perturbations' parameters (``--threshold``,
``--baseline``) after the option they belong to; :func:`run_options` turns the
parsed flags back into the Python API's keyword arguments. Defaults shown in
``--help`` come from the declaration, or, for a class's own parameter (a
backend's, a method's), from that class's signature, read only when help is shown.
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from attrib import registry
from attrib.errors import InputError
from attrib.options import (
    BATCH_TASKS,
    ITEM_TASKS,
    PARAMETERS,
    Option,
    Parameter,
    declared_settings,
    listing,
    options,
)

__all__ = [
    "HelpFormatter",
    "add_run_options",
    "run_options",
    "add_setting_flags",
    "setting_values",
    "check_setting_needs",
    "check_task_flags",
    "on_command",
    "flag",
    "text_flags",
    "class_default",
    "openai_key_variable",
    "show_default",
    "apply",
]


def flag(name: str) -> str:
    """The flag of option or parameter ``name``: ``max_new_tokens`` is ``--max-new-tokens``."""
    return "--" + name.replace("_", "-")


def apply(flags: list[str]) -> str:
    """``"applies"`` for one flag, ``"apply"`` for several."""
    return "applies" if len(flags) == 1 else "apply"


def class_default(kind: str, name: str, keyword: str) -> Callable[[], object]:
    """A lookup of ``keyword``'s default in the constructor of ``name`` registered as ``kind``
    (the class is imported when the lookup is called, not before)."""

    def lookup() -> object:
        found = inspect.signature(registry.resolve(kind, name)).parameters.get(keyword)
        return None if found is None or found.default is inspect.Parameter.empty else found.default

    return lookup


def openai_key_variable() -> str:
    """The environment variable the openai backend reads its key from by default (its own; imports it)."""
    backend: Any = registry.backends.resolve("openai")
    return str(backend.key_variable)


def show_default(action: argparse.Action, lookup: Callable[[], object]) -> argparse.Action:
    """Show ``lookup()`` as ``action``'s default in ``--help`` (:class:`HelpFormatter`)."""
    action.class_default = lookup  # type: ignore[attr-defined]
    return action


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's help (epilogs kept as written), a flag's class default added as ``(default X)``.

    The default is read when help is formatted, so ``--help`` shows a backend's own
    defaults without importing the backend on every command.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = super()._get_help_string(action)
        lookup: Callable[[], object] | None = getattr(action, "class_default", None)
        value = None if lookup is None else lookup()
        if text is None or value is None:
            return text
        shown = repr(value) if isinstance(value, str) and value != value.strip() else str(value)
        return f"{text} (default {shown.replace('%', '%%')})"


def on_command(command: str) -> dict[str, Option]:
    """The options with a flag on ``command``: those of its tasks (a batch runs either task), unless
    the option names its commands itself."""
    found: dict[str, Option] = {}
    for name, option in options().items():
        commands = option.commands
        if commands is None:
            commands = option.tasks | ({"batch"} if option.batch != "none" else set())
        if command in commands:
            found[name] = option
    return found


def _help(option: Option, command: str) -> str:
    """The option's help with its default for ``command`` (per task on ``batch``), %-escaped for argparse."""
    text = option.help.replace("%", "%%")
    batch_tasks = option.tasks & set(BATCH_TASKS)
    if command == "batch" and batch_tasks != set(BATCH_TASKS):  # a batch runs either task: say which
        text = f"{' and '.join(sorted(batch_tasks))}: {text}"
    if command != "batch" or not option.task_defaults:
        value = option.default_for(command)
        return text if value is None else f"{text} (default {value})"
    others = "; ".join(f"{value} for --task {task}" for task, value in option.task_defaults.items())
    return f"{text} (default {option.default}; {others})"


def _choices(option: Option, command: str) -> list[str] | None:
    """The names the flag accepts: on ``batch``, those of every task a batch runs (``--level source``
    is cite's; the run's options check refuses it for another task's items)."""
    if command != "batch":
        return option.names(command)
    found: dict[str, None] = {}
    for task in BATCH_TASKS:
        found.update(dict.fromkeys(option.names(task) or []))
    return list(found) or None


def _tasks(command: str, task: str) -> set[str]:
    """The tasks whose options ``command``'s flags give for ``task``: on ``batch``, its items' tasks."""
    return set(ITEM_TASKS[task]) if command == "batch" else {task}


def _parameters(kind: str) -> list[Parameter]:
    return [p for p in PARAMETERS if p.kind == kind]


def add_run_options(command: str, groups: Mapping[str, argparse._ActionsContainer]) -> None:
    """Add ``command``'s run-option flags, each to the group its option names (``"output"``,
    ``"method"``, ``"chat"``), a method's or perturbation's parameters after it."""
    for name, option in on_command(command).items():
        group = groups[option.group]
        per_task = command == "batch" and bool(option.task_defaults)
        group.add_argument(
            flag(name),
            type=option.flag_type(),
            choices=_choices(option, command),
            metavar=option.metavar,
            default=None if per_task else option.default_for(command),
            help=_help(option, command),
        )
        for parameter in _parameters(name):
            action = group.add_argument(
                flag(parameter.name),
                type=parameter.type,
                choices=listing(parameter.choices),
                metavar=parameter.metavar,
                help=f"{', '.join(parameter.applies_to)}: {parameter.help}".replace("%", "%%"),
            )
            show_default(action, parameter.default)


def _instance(args: argparse.Namespace, kind: str) -> Any:
    """The method or perturbation ``--KIND`` names, with the parameters given; a parameter given
    to a name that does not take it is an error."""
    name = getattr(args, kind)
    given = {p: getattr(args, p.name) for p in _parameters(kind) if getattr(args, p.name, None) is not None}
    wrong = [flag(p.name) for p in given if name not in p.applies_to]
    if wrong:
        takers = sorted({taker for p in given if name not in p.applies_to for taker in p.applies_to})
        raise InputError(f"{', '.join(wrong)} {apply(wrong)} to {flag(kind)} {', '.join(takers)}, not {name!r}")
    return registry.create(kind, name, **{p.argument: value for p, value in given.items()})


def run_options(
    args: argparse.Namespace, command: str, task: str, *, read_file: Callable[[str, str], str]
) -> dict[str, Any]:
    """The keyword arguments of ``task``'s function that ``command``'s flags give: every option with a
    flag on ``command`` that ``task`` takes; the method and perturbation built with their parameters,
    a file-valued option read with ``read_file(path, kind)``.

    Raises:
        InputError: for a parameter given to a method or perturbation that does not take it;
            the errors of ``read_file``; UnknownNameError for a bad parameter value.
    """
    values: dict[str, Any] = {}
    for name, option in on_command(command).items():
        if not option.tasks & _tasks(command, task):
            continue
        value = getattr(args, name)
        if value is None and option.task_defaults:
            value = option.default_for(task)
        if option.reads_file and value is not None:
            value = read_file(value, name.replace("_", " "))
        if _parameters(name):
            value = _instance(args, name)
        values[name] = value
    return values


def check_task_flags(args: argparse.Namespace, task: str) -> None:
    """On ``batch``: refuse flags of options ``task`` does not take, when given (not at their default).

    Raises:
        InputError: naming the flags given that ``task``'s items do not take, and the tasks that take them.
    """
    others = {name: o for name, o in on_command("batch").items() if not o.tasks & _tasks("batch", task)}
    given = {name: o for name, o in others.items() if getattr(args, name) != o.default}
    if given:
        flags = [flag(name) for name in given]
        tasks = sorted({t for o in given.values() for t in BATCH_TASKS if o.tasks & _tasks("batch", t)})
        listed = flags[0] if len(flags) == 1 else f"{', '.join(flags[:-1])} and {flags[-1]}"
        raise InputError(f"{listed} {apply(flags)} to --task {' or '.join(tasks)}")


def text_flags() -> list[str]:
    """The options and parameters whose flags take free text (checked as UTF-8 by the commands)."""
    texts = [
        name
        for name, option in options().items()
        if option.flag_type() is str and option.choices is None and not option.reads_file
    ]
    return texts + [p.name for p in PARAMETERS if p.type is str and p.choices is None]


def _flagged(declaration: type) -> dict[str, Any]:
    """The keys of the settings ``declaration`` that have a flag (a help), with their :class:`Default`."""
    return {name: default for name, (default, _) in declared_settings(declaration).items() if default.help}


def _setting_flag(name: str, default: Any) -> str:
    return flag(default.flag or name)


def add_setting_flags(group: argparse._ActionsContainer, declaration: type) -> None:
    """Add a flag for each key of the settings ``declaration`` (a :class:`~typing.TypedDict` of
    :class:`~attrib.options.Default`) that has a help: a switch for a ``bool``, else a value of
    its type (``int``, ``float`` or text), with its choices and its default shown."""
    for name, (default, kinds) in declared_settings(declaration).items():
        if not default.help:
            continue
        text = default.help.replace("%", "%%")
        if bool in kinds:
            group.add_argument(_setting_flag(name, default), dest=name, action="store_true", help=text)
            continue
        shown = default.value is not None and "(default" not in text
        group.add_argument(
            _setting_flag(name, default),
            dest=name,
            type=next((kind for kind in (int, float) if kind in kinds), str),
            choices=default.choices,
            metavar=default.metavar,
            default=None,  # not given: the declared default (told apart from a value given)
            help=f"{text} (default {default.value})" if shown else text,
        )


def setting_values(args: argparse.Namespace, declaration: type) -> dict[str, Any]:
    """The flagged settings of ``declaration`` as given on the command line (keyword arguments;
    those not given are left out, so the declared default applies)."""
    return {name: getattr(args, name) for name in _flagged(declaration) if getattr(args, name) not in (None, False)}


def check_setting_needs(args: argparse.Namespace, declaration: type) -> None:
    """Refuse flags of settings given without the setting value they need (``--workers`` without
    ``--executor ray``).

    Raises:
        InputError: naming every flag that needs that value, and the value.
    """
    given = setting_values(args, declaration)
    flagged = _flagged(declaration)
    for key, value in {d.needs for d in flagged.values() if d.needs is not None}:
        needing = [name for name, d in flagged.items() if d.needs == (key, value)]
        actual = getattr(args, key, None)
        if actual is None:
            actual = declared_settings(declaration)[key][0].value
        if actual != value and any(name in given for name in needing):
            flags = [_setting_flag(name, flagged[name]) for name in needing]
            listed = flags[0] if len(flags) == 1 else f"{', '.join(flags[:-1])} and {flags[-1]}"
            raise InputError(f"{listed} {apply(flags)} to {flag(key)} {value}")
