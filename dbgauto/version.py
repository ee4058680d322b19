"""The package version, in the lowest tier so that every layer can name it."""

__version__ = "0.1.0"
