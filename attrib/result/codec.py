"""Reading and writing result parts by their type hints: one rule per type, no per-field code.

:func:`decode` turns JSON-shaped data (or the dicts the pipeline builds) into the typed
parts, checking every value against its field's type on the way; :func:`encode` turns
the parts back into JSON-ready data. Both walk ``dataclasses.fields`` and
``typing.get_type_hints``, so adding a field to a part is all it takes to read,
write and publish it (``attrib.result.schema`` derives the JSON Schema the same way).
The pattern is pydantic's and cattrs' (structure/unstructure by type); this is the
small subset attrib needs, without the dependency.

Rules: ``int`` refuses booleans and fractions; ``float`` accepts integers and refuses
NaN and infinities; ``str`` refuses lone surrogates (they cannot be written as UTF-8);
a dataclass takes a mapping with only its own field names (missing ones take the
field's default); ``X | None`` takes ``null``; :data:`JSON` takes any JSON value
nested at most :data:`MAX_DEPTH` deep.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

import numpy as np

from attrib.errors import ResultError

__all__ = ["JSON", "MATRIX", "VECTOR", "MAX_DEPTH", "decode", "encode", "field_hints", "kind_of"]

#: Any JSON value (objects, arrays, strings, finite numbers, booleans, null).
JSON = Annotated[Any, "json"]
#: A float64 matrix, written as an array of rows of numbers.
MATRIX = "matrix"
#: A float64 vector, written as an array of numbers.
VECTOR = "vector"
#: Deepest nesting accepted inside a free-form :data:`JSON` value.
MAX_DEPTH = 32


_HINTS: dict[type, dict[str, Any]] = {}
#: Exact types a row of JSON numbers holds (``bool`` is not among them): the fast path of :func:`_array`.
_PLAIN_NUMBERS = frozenset({int, float})


def field_hints(cls: type) -> dict[str, Any]:
    """The resolved type hints of a dataclass's fields, ``Annotated`` extras kept (resolved once per class)."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = get_type_hints(cls, include_extras=True)
    return hints


def kind_of(value: object) -> str:
    """How to name the JSON type of ``value`` in an error message."""
    if value is None:
        return "null"
    if isinstance(value, (bool, np.bool_)):
        return "a boolean"
    if isinstance(value, numbers.Integral):
        return "an integer"
    if isinstance(value, numbers.Real):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple, np.ndarray)):
        return "an array"
    return type(value).__name__


def _wrong(where: str, expected: str, value: object) -> ResultError:
    return ResultError(f"malformed result: {where} must be {expected}, not {kind_of(value)}")


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise _wrong(where, "a string", value)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ResultError(
            f"malformed result: {where} holds a lone surrogate, which is not text (re-create the result)"
        ) from None
    return value


def _number(value: object, where: str, *, finite: bool = True) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise _wrong(where, "a number", value)
    number = float(value)
    if finite and not math.isfinite(number):
        raise ResultError(f"malformed result: {where} is {number}; results hold finite numbers only")
    return number


def _integer(value: object, where: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise _wrong(where, "an integer", value)
    return int(value)


def _sequence(value: object, where: str) -> Sequence[Any]:
    if isinstance(value, np.ndarray):
        return list(value)
    if not isinstance(value, (list, tuple)):
        raise _wrong(where, "an array", value)
    return value


def _json(value: object, where: str, depth: int = 0) -> Any:
    """A copy of a free-form JSON value, checked: finite numbers, text keys and strings, bounded depth."""
    if depth > MAX_DEPTH:
        raise ResultError(f"malformed result: {where} is nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return _number(value, where)
    if isinstance(value, str):
        return _text(value, where)
    if isinstance(value, Mapping):
        return {_text(k, f"{where} key"): _json(v, f"{where}.{k}", depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    raise _wrong(where, "a JSON value", value)


def _array(kind: str, value: object, where: str) -> np.ndarray:
    """A float64 array from a vector or a matrix of numbers (shape checked by the caller).

    Non-finite entries pass here (a backend may give a token no probability); JSON
    cannot hold them, so :func:`encode` refuses to write them and the reader never sees them.
    """
    if isinstance(value, np.ndarray):
        array = np.asarray(value, dtype=np.float64)
    else:
        rows = _sequence(value, where)
        if kind == MATRIX:
            matrix = []
            for i, row in enumerate(rows):
                if not (isinstance(row, list) and all(type(v) in _PLAIN_NUMBERS for v in row)):
                    row = [
                        _number(v, f"{where}[{i}][{j}]", finite=False)
                        for j, v in enumerate(_sequence(row, f"{where}[{i}]"))
                    ]
                matrix.append(row)
            if len({len(row) for row in matrix}) > 1:
                raise ResultError(f"malformed result: the rows of {where} differ in length")
            rows = matrix
        else:
            rows = [_number(v, f"{where}[{i}]", finite=False) for i, v in enumerate(rows)]
        array = np.asarray(rows, dtype=np.float64)
    if array.ndim != (2 if kind == MATRIX else 1) and array.size:
        raise ResultError(f"malformed result: {where} must be a {kind}, not an array of {array.ndim} dimensions")
    return array


def _dataclass(cls: type[Any], value: object, where: str) -> Any:
    if isinstance(value, cls):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(cls)}
    if not isinstance(value, Mapping):
        raise _wrong(where, "an object", value)
    hints = field_hints(cls)
    unknown = [key for key in value if key not in hints]
    if unknown:
        raise ResultError(f"malformed result: {where} has no field {unknown[0]!r} (fields: {', '.join(hints)})")
    options: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in value:
            options[f.name] = decode(hints[f.name], value[f.name], f"{where}.{f.name}" if where else f.name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ResultError(f"malformed result: {where or 'the result'} lacks the field {f.name!r}")
    return cls(**options)


def decode(hint: Any, value: object, where: str) -> Any:
    """``value`` checked against ``hint`` and converted to it (dataclasses built from mappings).

    Args:
        hint: a type hint of a result part's field.
        value: JSON-shaped data, or an instance of the hinted type.
        where: the field's path, for the error message (``"trace.chunks[3].parent"``).

    Raises:
        ResultError: naming the first field whose value does not fit its type.
    """
    origin = get_origin(hint)
    if origin is Annotated:
        base, tag = get_args(hint)[:2]
        return _json(value, where) if tag == "json" else _array(tag, value, where)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(hint) if a is not type(None)]
        if value is None:
            if len(options) < len(get_args(hint)):
                return None
            raise _wrong(where, "a value", value)
        if len(options) == 1:
            return decode(options[0], value, where)
        own = [o for o in options if dataclasses.is_dataclass(o) and isinstance(o, type) and isinstance(value, o)]
        if own:  # an instance of one form is checked as that form: its own error is the one to report
            return decode(own[0], value, where)
        if isinstance(value, Mapping) and all(dataclasses.is_dataclass(option) for option in options):
            keys = set(value)  # the form sharing the most field names with the data explains a mismatch best
            options.sort(key=lambda option: -len(keys & set(field_hints(option))))
        errors = []
        for option in options:
            try:
                return decode(option, value, where)
            except ResultError as error:
                errors.append(error)
        raise errors[0]
    if origin is Literal:
        if value not in get_args(hint) or isinstance(value, bool):
            choices = ", ".join(repr(a) for a in get_args(hint))
            raise ResultError(f"malformed result: {where} is {value!r}; expected one of {choices}")
        return value
    if origin is list:
        (item,) = get_args(hint)
        return [decode(item, v, f"{where}[{i}]") for i, v in enumerate(_sequence(value, where))]
    if origin is tuple:
        items = get_args(hint)
        values = _sequence(value, where)
        if len(values) != len(items):
            raise ResultError(f"malformed result: {where} must hold {len(items)} items, not {len(values)}")
        return tuple(decode(h, v, f"{where}[{i}]") for i, (h, v) in enumerate(zip(items, values, strict=True)))
    if origin is dict:
        _, item = get_args(hint)
        if not isinstance(value, Mapping):
            raise _wrong(where, "an object", value)
        return {_text(k, f"{where} key"): decode(item, v, f"{where}.{k}") for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, (bool, np.bool_)):
            raise _wrong(where, "true or false", value)
        return bool(value)
    if hint is int:
        return _integer(value, where)
    if hint is float:
        return _number(value, where)
    if hint is str:
        return _text(value, where)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _dataclass(hint, value, where)
    raise TypeError(f"no decoding rule for {hint!r}")  # a programming error in a part's annotations


def encode(value: object) -> Any:
    """JSON-ready data for a part, an array or a plain value (dataclasses by their fields).

    Raises:
        ResultError: if a number is NaN or infinite (JSON cannot hold it).
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            raise ResultError("attribution contains non-finite values and cannot be written as JSON")
        return value.tolist()
    if isinstance(value, Mapping):
        return {key: encode(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise ResultError("attribution contains non-finite values and cannot be written as JSON")
    return value
