"""The output to explain: a given target split jointly with the prompt, or the model's greedy output.

The output ``y`` is fixed before any perturbation: every variant is scored on the
same tokens (forced decoding). A given target is tokenized together with the
prompt's end (:meth:`attrib.prompt.Prompt.with_target`); otherwise the model
generates it greedily once. Either way the prompt and the output must fit the
model's context.

A contrast (a foil for contrastive attribution) is split exactly like a given
target, and must leave the prompt as the output does: both continuations are
then scored after the same prompt tokens. When a generated output and the
contrast would split the prompt differently (the contrast's first token takes in
the prompt's last characters), the generated text is split like a given target.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

from attrib.backend import Backend
from attrib.errors import EmptyOutputError, InputError, PromptTooLongError
from attrib.progress import Progress
from attrib.prompt import Layout, Prompt

__all__ = ["Output", "check_contrast_backend", "check_fits", "resolve_output", "split_contrast"]


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
        contrast_ids: the contrast's token ids, shape (k,), or ``()`` without a contrast.
        contrast_text: the contrast's text as tokenized (``None`` without a contrast).
    """

    layout: Layout
    ids: tuple[int, ...]
    text: str
    generated: int = 0
    tokens_evaluated: int = 0
    contrast_ids: tuple[int, ...] = ()
    contrast_text: str | None = None


def check_fits(backend: Backend, n_prompt: int, n_output: int, *, what: str = "output") -> None:
    """Refuse a prompt and continuation that exceed the model's context (BOS counted).

    Args:
        n_prompt: prompt tokens.
        n_output: tokens of the continuation scored after it.
        what: the continuation's name in the message: ``"output"`` or ``"contrast"``.

    Raises:
        PromptTooLongError: with both lengths, the limit, and what to shorten.
    """
    needed = n_prompt + n_output + 1
    if needed > backend.context_length:
        raise PromptTooLongError(
            f"prompt is {n_prompt:,} tokens and the {what} {n_output:,}; with BOS that is "
            f"{needed:,}, over the model's context of {backend.context_length:,} tokens; "
            f"shorten the prompt or the {what}",
            n_tokens=needed,
            limit=backend.context_length,
        )


def check_contrast_backend(backend: Backend) -> None:
    """Contrastive attribution needs forced log-probabilities of two given continuations.

    Raises:
        InputError: for a backend that scores text similarity or can only regenerate outputs.
    """
    capabilities = backend.capabilities()
    if capabilities.score_kind != "logprob" or not capabilities.supports_target:
        raise InputError(
            "contrast needs the log-probabilities of a given output (forced scoring), which this endpoint "
            "cannot give; omit contrast, or use a backend with forced scoring (llama, or a completions endpoint "
            "with echo)"
        )


def resolve_output(
    prompt: Prompt,
    backend: Backend,
    *,
    target: str | None,
    max_new_tokens: int,
    progress: Progress | None = None,
    contrast: str | None = None,
    generate: bool = True,
) -> Output:
    """Lay out ``prompt`` and fix the output: split ``target`` jointly, or generate greedily;
    then split ``contrast`` (if any) jointly with the same prompt.

    Args:
        generate: False for a dry run (:func:`attrib.plan`): without ``target`` nothing is
            generated; the output is taken as ``max_new_tokens`` placeholder tokens (``text``
            empty), after the prompt laid out as a contrast leaves it (the only layout after
            which the run can score both). Every check that needs no output text is made.

    Raises:
        InputError: for a target on a backend that can only regenerate outputs; for a
            contrast on a backend without forced log-probabilities, equal to the output,
            or splitting the prompt elsewhere than the output does.
        PromptTooLongError: if prompt and output (or contrast) exceed the context.
        EmptyOutputError: if the model generates nothing.
    """
    if contrast is not None:
        check_contrast_backend(backend)
    output = _resolve_target(
        prompt, backend, target=target, max_new_tokens=max_new_tokens, progress=progress, generate=generate
    )
    if contrast is None:
        return output
    known = output.text if generate or target is not None else None
    if output.generated and contrast != known:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a probe: the split below warns if it merges
            probe = prompt.with_target(backend, contrast)[0]
        if probe.tokenization.ids != output.layout.tokenization.ids:
            if known is None:  # a dry run: the only layout after which the run can score both
                output = dataclasses.replace(output, layout=probe)
            else:
                # the contrast takes in the prompt's last characters: split the generated text
                # the same way, as a given target, so both are scored after the same prompt
                layout, output_ids, text = prompt.with_target(backend, output.text)
                output = dataclasses.replace(output, layout=layout, ids=output_ids, text=text)
    ids, text = split_contrast(prompt, backend, output.layout, output.ids, known, contrast)
    return dataclasses.replace(output, contrast_ids=ids, contrast_text=text)


def split_contrast(
    prompt: Prompt,
    backend: Backend,
    layout: Layout,
    output_ids: tuple[int, ...],
    output_text: str | None,
    contrast: str,
) -> tuple[tuple[int, ...], str]:
    """Split ``contrast`` jointly with the prompt and check it is scored after the output's prompt.

    Args:
        output_text: the output's text, or ``None`` when it is not known yet (a dry run).

    Returns:
        ``(contrast token ids, contrast text)``.

    Raises:
        InputError: for a contrast equal to the output (as text or as tokens), or one that
            splits the prompt's end elsewhere than the output does.
        PromptTooLongError: if prompt and contrast exceed the context.
    """
    if contrast == output_text:
        raise InputError(f"contrast {contrast!r} equals the output; pass a different alternative output")
    with warnings.catch_warnings():
        # a merge the output shares was warned about with the output; one it does not is refused below
        warnings.simplefilter("ignore")
        contrast_layout, ids, text = prompt.with_target(backend, contrast)
    if contrast_layout.tokenization.ids != layout.tokenization.ids:
        shown = "" if output_text is None else f" {output_text!r}"
        raise InputError(
            f"the output{shown} and the contrast {contrast!r} split the prompt's end differently, so they "
            "cannot be scored after the same prompt; start both alike (e.g. both with a space)"
        )
    if ids == output_ids:
        raise InputError(f"contrast {contrast!r} has the same tokens as the output; pass a different alternative")
    check_fits(backend, len(layout.tokenization), len(ids), what="contrast")
    return ids, text


def _resolve_target(
    prompt: Prompt,
    backend: Backend,
    *,
    target: str | None,
    max_new_tokens: int,
    progress: Progress | None,
    generate: bool = True,
) -> Output:
    """The output alone: ``target`` split jointly with the prompt, or generated greedily (without
    ``generate``: ``max_new_tokens`` placeholder tokens, text empty)."""
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
    if not generate:
        return Output(layout, (0,) * max_new_tokens, "", generated=max_new_tokens)
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
