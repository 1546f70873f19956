"""Training: the trainer loop, its losses, run configs (``configs/*.toml``) and checkpoints.

May import ``core.model``, ``core.nets``, ``core.data`` and the foundation modules; only the CLIs
and tools import it.
"""
