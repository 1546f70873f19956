"""The model: VarSR (``varsr``), its config and bundles, the degradations it inverts (box filter,
camera), the face frame and the attribute directions.

May import the foundation modules (``core.errors``, ``core.images``, ``core.fileio``, ...),
``core.nets`` and ``core.data``'s types; never the workbench, case, search or CLIs.
"""
