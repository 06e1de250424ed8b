"""Choosing the scoring rung: walk the ladder, most exact first, and remember the verdict.

The ladder is every rung registered under kind ``"rung"`` in :mod:`attrib.registry`,
ordered by the rung's ``position`` (built in: ``forced``, then ``top_logprobs``,
then ``text``). Each rung probes the endpoint with one small request and the first
that is offered is used; the verdict is stored with the endpoint's metadata, keyed
by endpoint (without credentials), model and the ladder's names, so later runs and
later processes send no probe.

The probe rule
--------------
A rung is skipped only when the endpoint *answers* that it does not offer it: an
HTTP 4xx that names the route or the parameter (see
:func:`~attrib.backends.openai.statuses.says_unsupported`), or a 2xx answer
without the log-probabilities the rung reads. A transport failure (5xx, 429,
timeouts, dropped connections, malformed JSON) that outlasts every retry, a
refused key, or a web page where the API should be fails the run with a one-line
:class:`~attrib.errors.EndpointError` and stores no verdict: a flaky endpoint must
never be recorded as a less capable one.
"""

from __future__ import annotations

from attrib import registry
from attrib.errors import RequestRejectedError

from .rungs.base import Rung
from .transport import Transport

__all__ = ["choose_rung", "create_rung", "ladder", "verdict_parts"]


def ladder() -> list[str]:
    """The registered rungs' names, most exact first (by each class's ``position``, then name)."""
    return sorted(registry.rungs.names(), key=lambda name: (registry.rungs.resolve(name).position, name))


def create_rung(name: str, *, transport: Transport, model: str, top_logprobs: int) -> Rung:
    """The rung registered as ``name``, bound to the endpoint.

    Raises:
        UnknownNameError: if no rung has that name (with a "did you mean").
    """
    return registry.rungs.create(name, transport=transport, model=model, top_logprobs=top_logprobs)


def verdict_parts(model: str, names: list[str]) -> dict[str, object]:
    """The parts of the metadata key a verdict is stored under (with the endpoint, added by the transport)."""
    return {"model": model, "ladder": names}


async def choose_rung(transport: Transport, *, model: str, top_logprobs: int) -> Rung:
    """The most exact rung the endpoint offers: the stored verdict, or a walk down the ladder.

    Raises:
        RequestRejectedError: if the endpoint answers that it offers no rung at all.
        EndpointError: if a probe meets a transport failure after every retry, a refused
            key or a web page (no verdict is stored).
    """
    names = ladder()
    known = transport.recall("probe", **verdict_parts(model, names))
    if isinstance(known, dict) and known.get("scoring") in names:
        return create_rung(str(known["scoring"]), transport=transport, model=model, top_logprobs=top_logprobs)
    for name in names:
        rung = create_rung(name, transport=transport, model=model, top_logprobs=top_logprobs)
        if await rung.probe():
            transport.remember({"scoring": name}, "probe", **verdict_parts(model, names))
            return rung
    raise RequestRejectedError(
        f"{transport.endpoint} offers none of the scoring rungs ({', '.join(names)}): it has neither "
        "completions with echo nor chat completions; check --base-url"
    )
