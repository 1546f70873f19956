"""The analyst's workbench (no Qt): the session, its evidence and regions, candidates and their typed
recipes, the model catalogue, preprocessing, consistency enforcement and export.

May import ``core.model``, ``core.nets`` and the foundation modules; the case, search and the app
build on it, never the other way round.
"""
