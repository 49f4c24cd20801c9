"""The version of cygearman (one place: the package root, the CLI and otel read it here)."""
__version__ = "0.1.0"
