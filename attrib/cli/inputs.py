"""What the command line reads and writes: prompts and files in, results and reports out.

Text from files and stdin must be UTF-8; a file that is not, a directory, or a
missing file is a one-line :class:`~attrib.errors.InputError`. Outputs are
written whole or not at all.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from attrib.errors import EmptyPromptError, InputError

__all__ = ["read_bytes", "decode", "read_prompt", "write_text"]


def read_bytes(name: str, *, kind: str = "prompt file") -> tuple[bytes, str]:
    """The bytes of file ``name`` ('-' for stdin) and how to call it in messages.

    Raises:
        InputError: if the file is missing, a directory, or unreadable.
    """
    if name == "-":
        return sys.stdin.buffer.read(), "stdin"
    path = Path(name)
    try:
        return path.read_bytes(), str(path)
    except FileNotFoundError:
        raise InputError(f"{kind} not found: {path}") from None
    except IsADirectoryError:
        raise InputError(f"{kind} is a directory: {path}") from None
    except OSError as error:
        raise InputError(f"cannot read {kind} {path}: {error.strerror}") from None


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


def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` as UTF-8.

    Raises:
        InputError: if the file cannot be written.
    """
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as error:
        raise InputError(f"cannot write {path}: {error.strerror}") from None
