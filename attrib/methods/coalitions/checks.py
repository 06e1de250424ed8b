"""Checks of coalition-method parameters: one-line :class:`~attrib.errors.InputError` naming the fix."""

from __future__ import annotations

from attrib.errors import InputError

__all__ = ["at_least", "probability", "positive"]


def at_least(name: str, value: object, minimum: int) -> None:
    """Refuse anything but a whole number of at least ``minimum``.

    Raises:
        InputError: naming the parameter.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise InputError(f"{name} must be at least {minimum}, got {value}")


def probability(name: str, value: object) -> None:
    """Refuse anything but a number strictly between 0 and 1.

    Raises:
        InputError: naming the parameter.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < float(value) < 1.0:
        raise InputError(f"{name} must be a number strictly between 0 and 1, got {value!r}")


def positive(name: str, value: object, *, zero: bool = False) -> None:
    """Refuse anything but a finite positive number (or zero when ``zero``).

    Raises:
        InputError: naming the parameter.
    """
    number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else float("nan")
    if not (0.0 <= number < float("inf")) or (number == 0.0 and not zero):
        bound = "0 or more" if zero else "above 0"
        raise InputError(f"{name} must be a finite number {bound}, got {value!r}")
