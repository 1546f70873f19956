"""VarSR Studio's desktop app: a thin PySide6 view over :mod:`core.workbench.session` (heavy work in workers).

Every candidate it shows or exports is synthetic: an investigative lead, never evidence.
"""
