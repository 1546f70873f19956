"""The project's own error types: every bad input ends in one of these, with a message for a person."""


class VarSRError(Exception):
    """Base class: a clear, one-line message fit to show an analyst."""


class ImageLoadError(VarSRError):
    """An image file could not be read (missing, corrupt, unsupported, too large)."""


class ImageTooLarge(ImageLoadError):
    """A readable image whose size is over what the program opens (the reason is its size, not damage)."""


class BundleError(VarSRError):
    """A model bundle is missing, malformed, or its weights do not match its config."""


class DataError(VarSRError):
    """A data set folder is missing or does not have the expected layout."""


class CaseError(VarSRError):
    """A case folder is missing, malformed, from a newer format, or points outside itself."""


class ExportError(VarSRError):
    """The shortlist could not be exported (empty, or the folder exists and is not empty)."""


class ExportCancelled(ExportError):
    """An export was cancelled part-way: everything it had written was removed."""


class GenerationCancelled(VarSRError):
    """Raised inside a generation function when its ``cancelled()`` callback turns true."""


class RecipeError(CaseError):
    """A recorded recipe (or the region it names) is incomplete or has a value of the wrong type."""


class VideoError(VarSRError):
    """A video clip cannot be opened or decoded (missing, truncated, not a video, no video stream)."""
