"""The output to explain: a given target split jointly with the prompt, or the model's greedy output.

The output ``y`` is fixed before any perturbation: every variant is scored on the
same tokens (forced decoding). A given target is tokenized together with the
prompt's end (:meth:`attrib.prompt.Prompt.with_target`); otherwise the model
generates it greedily once. Either way the prompt and the output must fit the
model's context.
"""

from __future__ import annotations

from dataclasses import dataclass

from attrib.backend import Backend
from attrib.errors import EmptyOutputError, InputError, PromptTooLongError
from attrib.progress import Progress
from attrib.prompt import Layout, Prompt

__all__ = ["Output", "check_fits", "resolve_output"]


@dataclass(frozen=True)
class Output:
    """The prompt's layout and the output to explain.

    Attributes:
        layout: the prompt as the backend sees it (ends earlier when a target's first
            token merged with the prompt's end).
        ids: output token ids, shape (m,), m >= 1.
        text: the output text.
        generated: tokens generated to obtain it (0 for a given target).
        tokens_evaluated: tokens the backend computed to generate it.
    """

    layout: Layout
    ids: tuple[int, ...]
    text: str
    generated: int = 0
    tokens_evaluated: int = 0


def check_fits(backend: Backend, n_prompt: int, n_output: int) -> None:
    """Refuse a prompt and output that exceed the model's context (BOS counted).

    Raises:
        PromptTooLongError: with both lengths and the limit.
    """
    needed = n_prompt + n_output + 1
    if needed > backend.context_length:
        raise PromptTooLongError(
            f"prompt is {n_prompt:,} tokens and the output {n_output:,}; with BOS that is "
            f"{needed:,}, over the model's context of {backend.context_length:,} tokens; "
            "shorten the prompt or the output",
            n_tokens=needed,
            limit=backend.context_length,
        )


def resolve_output(
    prompt: Prompt, backend: Backend, *, target: str | None, max_new_tokens: int, progress: Progress | None = None
) -> Output:
    """Lay out ``prompt`` and fix the output: split ``target`` jointly, or generate greedily.

    Raises:
        InputError: for a target on a backend that can only regenerate outputs.
        PromptTooLongError: if prompt and output exceed the context.
        EmptyOutputError: if the model generates nothing.
    """
    if target is not None:
        if not backend.capabilities().supports_target:
            raise InputError(
                "this endpoint can only regenerate outputs (no forced scoring), so it cannot explain a given "
                "target; omit target to explain the model's own output"
            )
        layout, ids, text = prompt.with_target(backend, target)
        check_fits(backend, len(layout.tokenization), len(ids))
        return Output(layout, ids, text)
    layout = prompt.lay_out(backend)
    check_fits(backend, len(layout.tokenization), max_new_tokens)
    if progress is not None:
        progress.set_phase("generating")
    generation = backend.generate(
        layout.tokenization.ids, max_new_tokens=max_new_tokens, messages=prompt.generation_messages
    )
    if not generation.ids:
        raise EmptyOutputError(
            "the model generated no output (it stopped at once); pass target=... to explain a given output"
        )
    return Output(
        layout,
        generation.ids,
        backend.detokenize(generation.ids),
        generated=len(generation.ids),
        tokens_evaluated=generation.tokens_evaluated,
    )
