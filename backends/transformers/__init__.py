"""PyTorch / Hugging Face transformers backend (registered as ``transformers``).

Importing this package imports neither torch nor transformers; constructing
:class:`TransformersBackend` does, and raises
:class:`~attrib.errors.BackendUnavailableError` when they are missing
(``pip install 'attrib[torch]'``).
"""

from attrib.backends.transformers.backend import TransformersBackend

__all__ = ["TransformersBackend"]
