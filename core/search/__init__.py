"""Database search from a shortlist of candidates. No Qt.

* Plate registries: :mod:`core.search.plates`.
* Face galleries: :mod:`core.search.gallery` (index on disk), :mod:`core.search.embedders`,
  :mod:`core.search.rank`, :mod:`core.search.diverse`, and :mod:`core.search.faces` (what the CLI
  ``varsr-search faces`` and the app call).
"""
