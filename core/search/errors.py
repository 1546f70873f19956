"""Errors of the face search (each a :class:`~core.errors.VarSRError`: one clear line for a person)."""

from __future__ import annotations

from core.errors import VarSRError


class SearchError(VarSRError):
    """A face search could not run (bad arguments, no candidates, empty gallery)."""


class EmbedderError(SearchError):
    """An embedder's weights are missing, altered or unreadable."""


class IndexFormatError(SearchError):
    """A gallery index on disk is malformed, truncated, altered, or from a newer version."""


class SearchCancelled(SearchError):
    """The analyst cancelled indexing; nothing was written."""
