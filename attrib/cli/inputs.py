"""What the command line reads and writes: prompts and files in, results and reports out.

Text from files and stdin must be UTF-8; a file that is not, a directory, or a
missing file is a one-line :class:`~attrib.errors.InputError`. Outputs are
written whole or not at all.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from attrib.errors import EmptyPromptError, InputError, ResultError
from attrib.paths import Place, check_writable
from attrib.result.files import write_atomic

__all__ = ["MAX_TEXT_BYTES", "read_bytes", "decode", "read_prompt", "check_text", "check_output", "write_text"]

#: The largest prompt, system prompt or template read from a file or stdin: 64 MiB of text is
#: over ten million tokens, more than any model's context; beyond it, reading would only
#: exhaust memory (``--prompt-file /dev/zero``).
MAX_TEXT_BYTES = 64 * 1024 * 1024


def read_bytes(name: str, *, kind: str = "prompt file") -> tuple[bytes, str]:
    """The bytes of file ``name`` ('-' for stdin) and how to call it in messages.

    Raises:
        InputError: if the file is missing, a directory, or unreadable.
    """
    if name == "-":
        return _bounded(sys.stdin.buffer, "stdin", kind), "stdin"
    path = Path(name)
    try:
        with path.open("rb") as handle:
            return _bounded(handle, str(path), kind), str(path)
    except FileNotFoundError:
        raise InputError(f"{kind} not found: {path}") from None
    except IsADirectoryError:
        raise InputError(f"{kind} is a directory: {path}") from None
    except OSError as error:
        raise InputError(f"cannot read {kind} {path}: {error.strerror}") from None


def _bounded(handle: object, where: str, kind: str) -> bytes:
    """At most :data:`MAX_TEXT_BYTES` from ``handle``; more is an error before memory runs out."""
    data: bytes = handle.read(MAX_TEXT_BYTES + 1)  # type: ignore[attr-defined]
    if len(data) > MAX_TEXT_BYTES:
        raise InputError(
            f"{kind} {where} is larger than {MAX_TEXT_BYTES // (1024 * 1024)} MiB, more than any model's context holds; "
            "give a shorter text"
        )
    return data


def check_text(value: str | None, what: str) -> str | None:
    """``value`` if it is valid Unicode text; command-line bytes that are not UTF-8 are an error.

    Python decodes such bytes to lone surrogates (PEP 383), which no tokenizer, file or
    endpoint accepts.

    Raises:
        InputError: naming the option and the offending byte.
    """
    if value is None:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        byte = ord(value[error.start]) - 0xDC00 if "\udc80" <= value[error.start] <= "\udcff" else None
        shown = f"byte 0x{byte:02x}" if byte is not None else f"character {value[error.start]!r}"
        raise InputError(
            f"{what} is not UTF-8 text ({shown} at position {error.start}); pass UTF-8 text, or put it in a UTF-8 file"
        ) from None
    return value


def decode(data: bytes, where: str) -> str:
    """``data`` as UTF-8 text without one trailing newline (``\\n`` or ``\\r\\n``).

    Raises:
        InputError: naming the first byte that is not UTF-8.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(
            f"{where} is not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start}); convert it to UTF-8"
        ) from None
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith("\n") else text


def read_prompt(args: argparse.Namespace) -> str:
    """The prompt from PROMPT, ``--prompt-file`` or stdin (exactly one).

    Raises:
        InputError: if both PROMPT and --prompt-file are given, or the file cannot be read.
        EmptyPromptError: if no prompt is given at all.
    """
    if args.prompt is not None and args.prompt_file is not None:
        raise InputError("give the prompt either as PROMPT or with --prompt-file, not both")
    if args.prompt_file is not None:
        return decode(*read_bytes(args.prompt_file))
    if args.prompt == "-" or (args.prompt is None and not sys.stdin.isatty()):
        return decode(*read_bytes("-"))
    if args.prompt is None:
        raise EmptyPromptError("no prompt given; pass PROMPT, --prompt-file FILE, or pipe it on stdin")
    return str(args.prompt)


def check_output(path: str | None, what: str) -> None:
    """Refuse, before any work, an output path that cannot be written (:func:`attrib.paths.check_writable`).

    Raises:
        InputError: if ``path`` is empty or a directory, its directory does not exist, or
            either is not writable.
    """
    check_writable(Place(what, path))


def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` as UTF-8, whole or not at all
    (:func:`attrib.result.files.write_atomic`: a temporary file renamed into place).

    Raises:
        InputError: if the file cannot be written; nothing is left behind.
    """
    try:
        write_atomic(path, text)
    except ResultError as error:
        raise InputError(str(error)) from None
    except OSError as error:
        raise InputError(f"cannot write {path}: {error.strerror or error}") from None
