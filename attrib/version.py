"""attrib's version, in one place: ``attrib.__version__`` and a batch's ``run.json`` read it here."""

__all__ = ["__version__"]

__version__ = "0.1.0"
