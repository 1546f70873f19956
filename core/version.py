"""The installed package's version: pyproject.toml is the one source (a module of its own, so that any
module may read it without importing all of :mod:`core`)."""

from importlib.metadata import PackageNotFoundError, version

try:  # a bare checkout that was never installed says so
    __version__ = version("varsr-studio")
except PackageNotFoundError:
    __version__ = "0+unknown"
