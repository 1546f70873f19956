"""Database search from a shortlist of candidates: plate registries (:mod:`core.search.plates`) and more. No Qt."""
