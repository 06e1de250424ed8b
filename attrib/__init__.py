"""attrib: explain why a language model said what it said, by perturbing its prompt.

attrib ablates parts of a prompt, re-scores the model's original output under
each variant by forced decoding, and reports how the output's log-probability
changes: a matrix of input units × output tokens, in nats.

    >>> import attrib
    >>> result = attrib.attribute("The capital of Japan is", target=" Tokyo")  # doctest: +SKIP
    >>> result.top(3)                                                         # doctest: +SKIP

Methods: hierarchical perturbation (:class:`HiPe`, default), exhaustive
leave-one-out / iterative perturbation (:class:`ITP`), and the coalition methods
of :mod:`attrib.methods.coalitions` (Shapley sampling, KernelSHAP, ContextCite's surrogate,
LIME, hierarchical coalitions). Methods, backends and the rest are named in
:mod:`attrib.registry` and loaded on first use (installed packages add their own
through entry points); importing attrib imports no model library. The run options
(method, level, target, budget, ...) are declared once, in :mod:`attrib.options`.
"""

from attrib.auditing.run import audit
from attrib.backend import (
    Backend,
    Capabilities,
    Generation,
    ScoreRequest,
    ScoreResult,
    load_backend,
)
from attrib.batch import attribute_many
from attrib.context.attribution import cite, plan_cite
from attrib.context.sources import Source
from attrib.dryrun import Plan, plan
from attrib.errors import (
    AttribError,
    AuthenticationError,
    BackendError,
    BackendUnavailableError,
    BudgetError,
    CacheError,
    EmptyOutputError,
    EmptyPromptError,
    EndpointError,
    EndpointUnavailableError,
    InputError,
    ModelNotFoundError,
    NotAnAPIError,
    PromptTooLongError,
    RegistrationError,
    RequestRejectedError,
    ResponseMismatchError,
    ResultError,
    TokenizationError,
    UnknownNameError,
)
from attrib.loading import default_backend
from attrib.methods.hipe import Fixed, HiPe, MidRange, Relative
from attrib.methods.itp import ITP
from attrib.options import AuditOptions, CiteOptions, ExplainOptions
from attrib.perturbation import Deletion, Replacement
from attrib.pipeline import attribute
from attrib.result import Attribution, Claim, Contrast, Stats, UnitScore
from attrib.segmentation import LEVELS, Segmentation, Tokenization, Unit
from attrib.version import __version__ as __version__

__all__ = [
    "attribute",
    "attribute_many",
    "cite",
    "plan_cite",
    "audit",
    "plan",
    "Plan",
    "ExplainOptions",
    "AuditOptions",
    "CiteOptions",
    "default_backend",
    "Attribution",
    "Contrast",
    "Claim",
    "Source",
    "Stats",
    "UnitScore",
    "Unit",
    "LEVELS",
    "Segmentation",
    "Tokenization",
    "HiPe",
    "ITP",
    "MidRange",
    "Relative",
    "Fixed",
    "Deletion",
    "Replacement",
    "Backend",
    "Capabilities",
    "Generation",
    "ScoreRequest",
    "ScoreResult",
    "load_backend",
    "AttribError",
    "InputError",
    "EmptyPromptError",
    "PromptTooLongError",
    "UnknownNameError",
    "BudgetError",
    "BackendError",
    "BackendUnavailableError",
    "ModelNotFoundError",
    "TokenizationError",
    "EmptyOutputError",
    "ResponseMismatchError",
    "EndpointError",
    "AuthenticationError",
    "RequestRejectedError",
    "EndpointUnavailableError",
    "NotAnAPIError",
    "CacheError",
    "RegistrationError",
    "ResultError",
]
