"""Several replicas of one model behind one backend: least outstanding requests, failover, back-off.

A backend given several base URLs (``--base-url`` more than once, ``base_url=[...]``)
sends each attempt of a request to one replica, chosen by :meth:`Replicas.pick`:

- among the replicas that are *up*, the one with the fewest attempts in flight
  (least outstanding requests), ties going to the one picked least recently, so
  sequential requests alternate too;
- a replica whose attempt fails in a way the status table retries (connection
  refused or dropped, timeout, 5xx, 429, malformed JSON; :mod:`.statuses`) is
  marked *down* for ``min(max_down, first_down * 2 ** (failures - 1))`` seconds
  (exponential back-off over its consecutive failures), or for what a 429's
  ``Retry-After`` asks; the retry goes to another replica at once, without waiting;
- when every replica is down, the one that comes back first is tried (after the
  transport's usual wait between attempts): a down mark is a preference, never a refusal;
- a replica's first success clears its failures.

``routing="in_order"`` replaces the least-outstanding rule by the order given: the
first replica that is up takes every attempt, the others are its fallbacks (how a
Ray actor is pinned to one replica, :mod:`attrib.batch.ray_executor`).

Every replica must serve the same model; the backend checks their model listings
before the first request (:meth:`attrib.backends.openai.OpenAIBackend.capabilities`).
A replica that does not answer that check (after every retry) is excluded for the
run, with a warning: its model is unknown.
Which replica answered never enters a cache key or a result: the endpoint recorded
is the set of replicas (:attr:`Replicas.shown`).

Source: the least-outstanding-requests rule of load balancers (Envoy's
``LEAST_REQUEST``, AWS ALB's "least outstanding requests") and exponential back-off
(AWS Architecture Blog, "Exponential Backoff and Jitter", 2015).
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from attrib.errors import InputError
from attrib.urls import BaseURL

__all__ = ["ROUTINGS", "Replica", "Replicas"]

#: How attempts are spread: ``least_outstanding`` (default) or ``in_order`` (first up replica).
ROUTINGS: tuple[str, ...] = ("least_outstanding", "in_order")


@dataclass
class Replica:
    """One base URL of the backend and its state.

    Attributes:
        base: the parsed base URL (``/v1`` root and query).
        root: the server root (``base.root`` without ``/v1``), for routes outside the API.
        outstanding: attempts in flight now.
        failures: consecutive failed attempts (0 after a success).
        down_until: ``time.monotonic()`` value until which it is not picked while another is up.
        answered: attempts it answered (any status that is not a retried failure).
        excluded: never picked (it did not answer the model check, so its model is unknown).
    """

    base: BaseURL
    root: str = field(init=False)
    outstanding: int = 0
    failures: int = 0
    down_until: float = 0.0
    answered: int = 0
    last_picked: int = -1
    excluded: bool = False

    def __post_init__(self) -> None:
        self.root = re.sub(r"/v1$", "", self.base.root)

    @property
    def shown(self) -> str:
        """The base URL's shown form (no query values): safe in messages and records."""
        return self.base.shown


class Replicas:
    """The replicas of one backend, and the rule that picks one for each attempt.

    Args:
        bases: the base URLs, at least one, no two the same.
        routing: ``"least_outstanding"`` or ``"in_order"`` (see the module docstring).
        first_down: seconds a replica is down after its first failure.
        max_down: the longest it is down after many (caps a 429's ``Retry-After`` too).
        clock: the monotonic clock (a test may pass its own).

    Raises:
        InputError: for no base URL, the same one twice, or an unknown ``routing``.
    """

    def __init__(
        self,
        bases: Sequence[BaseURL],
        *,
        routing: str = "least_outstanding",
        first_down: float = 1.0,
        max_down: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not bases:
            raise InputError("give at least one base URL")
        shown = [b.shown for b in bases]
        twice = sorted({s for s in shown if shown.count(s) > 1})
        if twice:
            raise InputError(f"the base URL {twice[0]} is given twice; give each replica once")
        if routing not in ROUTINGS:
            raise InputError(f"routing must be one of {', '.join(ROUTINGS)}, got {routing!r}")
        self.all = [Replica(b) for b in bases]
        self.routing = routing
        self.first_down = first_down
        self.max_down = max_down
        self._clock = clock
        self._picks = itertools.count()

    def __len__(self) -> int:
        return len(self.all)

    @property
    def shown(self) -> str:
        """The endpoint as recorded: the one base URL, or every replica's, sorted and comma-separated
        (the same whichever order they were given in and whichever one answered)."""
        return ", ".join(sorted(r.shown for r in self.all))

    def usable(self) -> list[Replica]:
        """The replicas not excluded."""
        return [r for r in self.all if not r.excluded]

    def up(self) -> list[Replica]:
        """The replicas not excluded nor marked down now."""
        now = self._clock()
        return [r for r in self.usable() if r.down_until <= now]

    def exclude(self, replica: Replica) -> None:
        """Never pick ``replica`` again (at least one other stays usable).

        Raises:
            InputError: if it is the last usable one.
        """
        if self.usable() == [replica]:
            raise InputError(f"the replica {replica.shown} is the only one left; it cannot be excluded")
        replica.excluded = True

    def pick(self) -> Replica:
        """The replica the next attempt goes to (its ``outstanding`` is not changed here)."""
        candidates = self.up()
        if not candidates:  # all down: the one back first
            soonest = min(r.down_until for r in self.usable())
            candidates = [r for r in self.usable() if r.down_until == soonest]
        if self.routing == "in_order":
            chosen = candidates[0]
        else:
            chosen = min(candidates, key=lambda r: (r.outstanding, r.last_picked))
        chosen.last_picked = next(self._picks)
        return chosen

    def another_up(self, replica: Replica) -> bool:
        """Whether a replica other than ``replica`` is up (a retry then goes there without waiting)."""
        return any(r is not replica for r in self.up())

    def failed(self, replica: Replica, *, wait: float | None = None) -> float:
        """Mark ``replica`` down after a retried failure; ``wait`` is a ``Retry-After`` (seconds).

        Returns:
            Seconds it is down for.
        """
        replica.failures += 1
        backoff = self.first_down * 2 ** min(replica.failures - 1, 30)
        seconds = min(self.max_down, wait if wait is not None else backoff)
        replica.down_until = max(replica.down_until, self._clock() + seconds)
        return seconds

    def succeeded(self, replica: Replica) -> None:
        """``replica`` answered: it is up, its failures forgotten."""
        replica.failures = 0
        replica.down_until = 0.0
        replica.answered += 1
