"""Plate registry search: from each character cell's candidates to ranked plate strings and registry records.

No Qt. Every string and every record found this way is an investigative lead, never evidence.

1. **Per-position probabilities.** Each cell (position ``i``) has ``K`` candidates ``x_i1 .. x_iK``
   (the plate model's outputs for that cell; one image for ``det`` or bicubic). The bundled plate
   reader ``f`` reads each (stretched as its training characters were), and

       P_i(c) = (1/K) * sum_k softmax(f(x_ik))_c

   the mean of its softmax over the candidates: a Monte-Carlo estimate of ``E_z[p(c | G(I_L, z))]``,
   so a class that some candidates show keeps a share instead of losing to a majority vote. Given the
   cells' model inputs, candidates are read beside the bicubic upscale (the mean of the two
   distributions, ``varsr+bicubic``: the best reading on held-out real plates) and tempered by the
   per-position temperature measured for that reading and size, so the shown probabilities are
   calibrated (:func:`position_probabilities`). Each ``P_i`` is floored at :data:`PROB_FLOOR` and
   renormalised, so no string is impossible.
2. **Ranked strings.** Cells are generated independently, so a plate string ``s`` scores
   ``log P(s) = sum_i log P_i(s_i)``. :func:`beam_search` keeps the best ``beam`` prefixes per
   position; for such a product distribution that is exact for the top ``beam`` strings.
3. **Alternatives.** A position is ambiguous when more than one class has ``P_i >= min_p``
   (e.g. ``8/B 0.61/0.30``); those classes form the *plausible pattern* (``[8B]A[0D]...``).
4. **Registry.** Every registry plate of the reading's length scores ``log P(plate)`` the same way,
   so the whole registry is ranked, not only the beam's strings. Listed: *exact* matches (a
   record's plate is one of the top strings), *wildcard* matches (a record fits the analyst's
   pattern, ``?`` = any one character, ``[8B]`` = one of a set; by default the plausible pattern)
   and the *ranked* registry.

The CLI (``varsr-search plates ...``) is :mod:`core.cli.search_plates`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core.errors import VarSRError
from core.nets.classifier import CharClassifier, default_path, load_classifier
from core.search.plate_registry import PlateRegistry
from core.workbench.export import NOTICE

#: Floor on each per-position probability (then renormalised): a classifier slip never makes a
#: registry plate impossible, only unlikely (``log 1e-6 = -13.8`` per position).
PROB_FLOOR = 1e-6
#: A class with at least this probability at a position is listed as an alternative there.
MIN_P = 0.1
#: A position is unreliable when its entropy exceeds this (nats; ln 2 = two equally likely classes)
#: or its best class has less than MIN_TOP probability (the batch and the app flag it alike).
MAX_ENTROPY = 0.69
MIN_TOP = 0.6
#: At most this many alternatives per position.
MAX_ALTERNATIVES = 4
VARSR = "varsr"
#: What a ranked plate string is, in one line (shown with every result).
STRING_NOTICE = ("Ranked plate strings and registry records come from synthetic candidates: investigative "
                 "leads to check, not a reading of the plate and not evidence.")


class PatternError(VarSRError):
    """A wildcard pattern is malformed, uses unknown characters or has the wrong length."""


@dataclass
class PlateReading:
    """Per-position class probabilities ``probs (L, C)`` (rows sum to 1) over ``classes``."""

    probs: np.ndarray
    classes: list[str]
    n_candidates: list[int] = field(default_factory=list)
    #: how ``probs`` were made: ``varsr`` (mean over candidates), ``varsr+bicubic``, ``det`` or ``bicubic``
    method: str = ""
    #: the per-position temperature applied to them (1: none)
    temperature: float = 1.0

    def __post_init__(self) -> None:
        p = np.asarray(self.probs, dtype=np.float64)
        if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] != len(self.classes):
            raise VarSRError(f"per-position probabilities must be (positions, {len(self.classes)}), "
                             f"not {tuple(p.shape)}")
        if not np.all(np.isfinite(p)) or (p < 0).any() or (p.sum(1) <= 0).any():
            raise VarSRError("per-position probabilities must be finite, non-negative and not all zero")
        p = p / p.sum(1, keepdims=True)
        p = np.maximum(p, PROB_FLOOR)
        self.probs = p / p.sum(1, keepdims=True)
        if not self.n_candidates:
            self.n_candidates = [0] * len(p)

    @property
    def length(self) -> int:
        return int(self.probs.shape[0])

    @property
    def log_probs(self) -> np.ndarray:
        return np.log(self.probs)

    def score(self, text: str) -> float:
        """``log P(text)``; ``-inf`` for another length or a character outside the classes."""
        where = {c: i for i, c in enumerate(self.classes)}
        if len(text) != self.length or any(c not in where for c in text):
            return -math.inf
        return float(sum(self.log_probs[i, where[c]] for i, c in enumerate(text)))


# -- from candidates to probabilities --------------------------------------------------------------
def plate_classifier_path() -> Path:
    """The bundled reader of plate characters: ``plate-reader`` (trained on real and rendered plate
    characters; 98.0 % of held-out UC3M-LP characters against the older ``plate-char`` classifier's
    75.9 %), or ``plate-char`` where it is not installed."""
    reader = default_path("plate-reader")
    return reader if reader.is_file() else default_path("plate-char")


def load_plate_classifier(path: str | Path | None = None) -> CharClassifier:
    """The bundled plate reader (:func:`plate_classifier_path`), or the classifier at ``path``."""
    return load_classifier(path or plate_classifier_path())


def _as_batch(x: torch.Tensor, clf: CharClassifier) -> torch.Tensor:
    """One cell's candidates, ``(K, C, H, W)`` (or one image ``(C, H, W)`` / ``(H, W)``), as grey
    floats at the classifier's size."""
    x = x.float()
    if x.dim() == 2:
        x = x[None, None]
    elif x.dim() == 3:
        x = x[None]
    if x.dim() != 4 or len(x) == 0 or x.shape[1] not in (1, 3):
        raise VarSRError(f"a cell's candidates must be a (K, C, H, W) stack of images, not {tuple(x.shape)}")
    x = _luma(x)
    w, h = clf.info.size
    if tuple(x.shape[-2:]) != (h, w):
        x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    return x


def position_probabilities(classifier: CharClassifier, cells: Sequence[torch.Tensor], *,
                           lrs: Sequence[torch.Tensor] | None = None, method: str = VARSR,
                           stretch: bool = True) -> PlateReading:
    """``P_i(c)``: each position's distribution, read as :mod:`core.plates.evaluate` measures it.

    ``cells[i]``: position ``i``'s candidates, ``(K, 1, H, W)`` in [0, 1] (other sizes are resized). Each
    image is stretched as the reader's training characters were (``stretch``; off only to replay readings
    recorded before it) and read at the reader's temperature; ``P_i`` is the mean over the candidates.
    With ``lrs`` (each cell's model input, ``(1, h, w)``):

    * ``method`` ``varsr`` becomes ``varsr+bicubic``: the mean of the candidates' and the bicubic
      upscale's distributions, the best reading measured on held-out real plates at every size;
    * the per-position temperature fitted for that method at the cells' pixels per character is applied
      (:func:`core.plates.reading.position_temperature`), so the shown probabilities are calibrated.
    """
    from core.plates.reading import FUSED, bicubic_up, classify, position_temperature, reader_temperature, temper

    if not cells:
        raise VarSRError("no character cells to read")
    if lrs is not None and len(lrs) != len(cells):
        raise VarSRError(f"{len(lrs)} model inputs for {len(cells)} cells")
    batches = [_as_batch(c, classifier) for c in cells]
    x = torch.cat(batches)
    reader_t = reader_temperature(classifier)
    probs = (classify(classifier, x, reader_t) if stretch else classifier.probs(x)).double()
    rows, start = [], 0
    for b in batches:
        rows.append(probs[start : start + len(b)].mean(0))
        start += len(b)
    p = torch.stack(rows).numpy()
    temperature = 1.0
    if lrs is not None:
        lr = torch.stack([_grey(v) for v in lrs])
        if method == VARSR:
            bic = classify(classifier, bicubic_up(lr, classifier.info.size), reader_t).double().numpy()
            p, method = (p + bic) / 2, FUSED
        h, w = lr.shape[-2:]
        temperature = position_temperature(classifier, method, (float(w), float(h)))
        if temperature != 1.0:
            p = temper(p, temperature)
    return PlateReading(p, list(classifier.classes), [len(b) for b in batches], method, temperature)


def read_candidates(classifier: CharClassifier, cells: Sequence[Sequence[Any]]) -> PlateReading:
    """:func:`position_probabilities` of each cell's session candidates (objects with ``image``, ``lr``
    and ``z``: read with their model inputs; ``det`` when none has a latent) or bare image tensors."""
    stacks = [torch.stack([c.image if hasattr(c, "image") else c for c in cell]) for cell in cells]
    if not cells or not all(len(c) and hasattr(c[0], "lr") for c in cells):
        return position_probabilities(classifier, stacks)
    det = all(getattr(x, "z", None) is None for c in cells for x in c)
    return position_probabilities(classifier, stacks, lrs=[c[0].lr for c in cells], method="det" if det else VARSR)


def _grey(x: torch.Tensor) -> torch.Tensor:
    """One cell's model input ``(C, h, w)`` or ``(h, w)`` as ``(1, h, w)`` grey floats."""
    x = x.float()
    return _luma(x[None] if x.dim() == 2 else x.reshape(-1, *x.shape[-2:]))


def _luma(x: torch.Tensor) -> torch.Tensor:
    """Channels (dim -3) of RGB images to one grey channel (ITU-R 601); grey images as they are."""
    if x.shape[-3] != 3:
        return x[..., :1, :, :]
    return 0.299 * x[..., 0:1, :, :] + 0.587 * x[..., 1:2, :, :] + 0.114 * x[..., 2:3, :, :]


# -- patterns ----------------------------------------------------------------------------------------
Pattern = list[frozenset[str] | None]
_TOKEN = re.compile(r"\[([^\]]*)\]|(.)")


def parse_pattern(text: str, classes: Sequence[str], length: int | None = None) -> Pattern:
    """``AB?1[8B]2`` -> one entry per position: ``None`` (``?``: any) or the allowed characters.

    Case-insensitive; spaces and hyphens are ignored. Raises :class:`PatternError`.
    """
    known = set(classes)
    out: Pattern = []
    body = text.strip().upper().replace(" ", "").replace("-", "")
    if "]" in _TOKEN.sub(lambda m: "" if m.group(1) is not None else m.group(0), body):
        raise PatternError(f"pattern {text!r}: a ']' without its '['")
    for m in _TOKEN.finditer(body):
        group, ch = m.group(1), m.group(2)
        if group is not None:
            chars = frozenset(group.replace(",", "").replace("/", ""))
            if not chars:
                raise PatternError(f"pattern {text!r}: an empty set []")
            bad = sorted(chars - known)
            if bad:
                raise PatternError(f"pattern {text!r}: unknown characters {''.join(bad)} (known: {''.join(classes)})")
            out.append(chars)
        elif ch == "?":
            out.append(None)
        elif ch == "[":
            raise PatternError(f"pattern {text!r}: a '[' without its ']'")
        elif ch in known:
            out.append(frozenset(ch))
        else:
            raise PatternError(f"pattern {text!r}: unknown character {ch!r} (known: {''.join(classes)}, ? and [..])")
    if not out:
        raise PatternError("empty pattern")
    if length is not None and len(out) != length:
        raise PatternError(f"pattern {text!r} has {len(out)} positions, the plate has {length} cells")
    return out


def pattern_text(pattern: Pattern) -> str:
    """The canonical text of a pattern (``?`` or the sorted set in brackets)."""
    return "".join("?" if s is None else (next(iter(s)) if len(s) == 1 else f"[{''.join(sorted(s))}]")
                   for s in pattern)


def matches_pattern(text: str, pattern: Pattern) -> bool:
    """Whether a (normalised) plate text fits the pattern, position by position."""
    return len(text) == len(pattern) and all(s is None or c in s for c, s in zip(text, pattern, strict=True))


def _allowed_mask(pattern: Pattern | None, classes: Sequence[str], length: int) -> np.ndarray:
    """``(L, C)`` booleans: which classes the pattern allows at each position."""
    mask = np.ones((length, len(classes)), dtype=bool)
    if pattern is not None:
        if len(pattern) != length:
            raise PatternError(f"the pattern has {len(pattern)} positions, the plate has {length} cells")
        for i, s in enumerate(pattern):
            if s is not None:
                mask[i] = [c in s for c in classes]
    return mask


# -- ranked strings ----------------------------------------------------------------------------------
def beam_search(log_probs: np.ndarray, classes: Sequence[str], top: int = 10, beam: int | None = None,
                pattern: Pattern | None = None) -> list[tuple[str, float]]:
    """The ``top`` plate strings by ``sum_i log_probs[i, s_i]``, best first, ties by text.

    Keeps the best ``beam`` (default and minimum: ``top``) prefixes after each position; with
    independent positions every prefix of a top-``beam`` string is itself a top-``beam`` prefix,
    so the result is exact. ``pattern`` restricts each position to its allowed characters.
    """
    lp = np.asarray(log_probs, dtype=np.float64)
    if top < 1:
        raise VarSRError(f"top must be at least 1, not {top}")
    width = max(int(beam or top), top)
    mask = _allowed_mask(pattern, classes, lp.shape[0])
    hyps: list[tuple[str, float]] = [("", 0.0)]
    for i in range(lp.shape[0]):
        allowed = np.flatnonzero(mask[i])
        ext = [(text + classes[c], score + float(lp[i, c])) for text, score in hyps for c in allowed]
        ext.sort(key=lambda t: (-round(t[1], 9), t[0]))
        hyps = ext[:width]
    return hyps[:top]


# -- alternatives ----------------------------------------------------------------------------------
@dataclass
class Position:
    """One position's most likely character and its alternatives ``[(char, p), ...]``, best first."""

    index: int
    alternatives: list[tuple[str, float]]
    n_candidates: int = 0
    #: entropy (nats) of the whole distribution over classes, not only of the alternatives
    entropy: float = 0.0

    @property
    def unreliable(self) -> bool:
        """High entropy or a weak best class (:data:`MAX_ENTROPY`, :data:`MIN_TOP`): say so, plainly."""
        return self.entropy > MAX_ENTROPY or self.alternatives[0][1] < MIN_TOP

    @property
    def best(self) -> str:
        return self.alternatives[0][0]

    @property
    def ambiguous(self) -> bool:
        return len(self.alternatives) > 1

    @property
    def label(self) -> str:
        """``8/B`` for an ambiguous position, ``8`` otherwise."""
        return "/".join(c for c, _ in self.alternatives)

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "best": self.best, "ambiguous": self.ambiguous, "label": self.label,
                "alternatives": [{"char": c, "p": round(p, 4)} for c, p in self.alternatives],
                "n_candidates": self.n_candidates, "entropy": round(self.entropy, 4),
                "unreliable": self.unreliable}


def alternatives(reading: PlateReading, min_p: float = MIN_P, max_alternatives: int = MAX_ALTERNATIVES
                 ) -> list[Position]:
    """Per position: the classes with ``P_i >= min_p`` (at least the best), up to ``max_alternatives``."""
    out = []
    for i, row in enumerate(reading.probs):
        order = sorted(range(len(row)), key=lambda c: (-row[c], reading.classes[c]))
        alts = [(reading.classes[c], float(row[c])) for c in order[:max_alternatives]
                if c == order[0] or row[c] >= min_p]
        p = np.asarray(row, dtype=np.float64)
        ent = float(-(p[p > 0] * np.log(p[p > 0])).sum())
        out.append(Position(i, alts, reading.n_candidates[i], ent))
    return out


def plausible_pattern(positions: Sequence[Position]) -> Pattern:
    """The pattern allowing each position's alternatives (``[8B]A[0D]...``)."""
    return [frozenset(c for c, _ in p.alternatives) for p in positions]


# -- registry matching -------------------------------------------------------------------------------
@dataclass
class RegistryHit:
    """One registry record found: its rank among all scored records, score and other columns."""

    kind: str  # "exact", "wildcard" or "ranked"
    plate: str
    key: str
    score: float
    rank: int
    line: int
    record: dict[str, str]
    string_rank: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "plate": self.plate, "key": self.key, "score": round(self.score, 4),
                "probability": _prob(self.score), "rank": self.rank, "string_rank": self.string_rank,
                "line": self.line, "record": self.record}


def _prob(score: float) -> float:
    return float(f"{math.exp(score):.4g}") if math.isfinite(score) else 0.0


@dataclass
class RegistryRanking:
    """All scorable records of a registry under a reading, best first (ties by line)."""

    indices: np.ndarray  # record indices, best first
    scores: np.ndarray  # their log-probabilities
    codes: np.ndarray  # their class codes (n, L)
    n_other: int  # records of another length or with characters outside the classes

    def rank_of(self, key: str, registry: PlateRegistry) -> int | None:
        """1-based rank of the first record whose plate is ``key`` (None if not scored)."""
        for r, i in enumerate(self.indices):
            if registry.keys[int(i)] == key:
                return r + 1
        return None


def rank_registry(reading: PlateReading, registry: PlateRegistry) -> RegistryRanking:
    """Score every record of the reading's length: ``log P(plate) = sum_i log P_i(plate_i)``."""
    idx, codes = registry.encoded(reading.classes, reading.length)
    lp = reading.log_probs
    scores = lp[np.arange(reading.length)[None, :], codes].sum(1) if len(idx) else np.zeros(0)
    order = np.lexsort((idx, -np.round(scores, 9)))
    return RegistryRanking(idx[order], scores[order], codes[order], len(registry) - len(idx))


def _hit(kind: str, registry: PlateRegistry, i: int, score: float, rank: int,
         string_ranks: dict[str, int]) -> RegistryHit:
    key = registry.keys[i]
    return RegistryHit(kind, registry.records[i][registry.column], key, float(score), rank, registry.lines[i],
                       registry.other_columns(i), string_ranks.get(key))


@dataclass
class PlateSearchResult:
    """Everything one plate search found (JSON via :meth:`to_dict`)."""

    reading: PlateReading
    positions: list[Position]
    strings: list[tuple[str, float]]
    pattern: str
    pattern_source: str  # "user" or "alternatives"
    registry: PlateRegistry | None = None
    exact: list[RegistryHit] = field(default_factory=list)
    wildcard: list[RegistryHit] = field(default_factory=list)
    ranked: list[RegistryHit] = field(default_factory=list)
    n_wildcard: int = 0
    n_scored: int = 0
    n_other: int = 0

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "notice": NOTICE,
            "search_notice": STRING_NOTICE,
            "length": self.reading.length,
            "probabilities": describe_reading(self.reading),
            "reading_method": self.reading.method or None,
            "position_temperature": round(self.reading.temperature, 4),
            "positions": [p.to_dict() for p in self.positions],
            "reading": "".join(f"[{p.label}]" if p.ambiguous else p.best for p in self.positions),
            "strings": [{"rank": r + 1, "text": t, "score": round(s, 4), "probability": _prob(s)}
                        for r, (t, s) in enumerate(self.strings)],
            "pattern": self.pattern,
            "pattern_source": self.pattern_source,
        }
        if self.registry is not None:
            reg = self.registry
            d["registry"] = {
                "path": str(reg.path) if reg.path else None, "sha256": reg.sha256 or None, "column": reg.column,
                "columns": reg.columns,
                "n_records": len(reg), "n_scored": self.n_scored, "n_other_length_or_chars": self.n_other,
                "n_skipped_empty": reg.skipped, "n_wildcard": self.n_wildcard,
                "exact": [h.to_dict() for h in self.exact],
                "wildcard": [h.to_dict() for h in self.wildcard],
                "ranked": [h.to_dict() for h in self.ranked],
            }
        return d


def describe_reading(reading: PlateReading) -> str:
    """How a reading's probabilities were made, in words (kept with every search)."""
    what = {"varsr+bicubic": "mean of the reader's softmax over each position's candidates, averaged with its "
                             "reading of the bicubic upscale",
            "bicubic": "the reader's softmax on each position's bicubic upscale",
            "det": "the reader's softmax on each position's deterministic output"}.get(
        reading.method, "mean of the reader's softmax over each position's candidates")
    return what + (f", at per-position temperature {reading.temperature:.3g}" if reading.temperature != 1.0 else "")


def search_plate(reading: PlateReading, registry: PlateRegistry | None = None, *, top: int = 10,
                 beam: int | None = None, pattern: str | None = None, registry_top: int = 10,
                 wildcard_max: int = 100, min_p: float = MIN_P) -> PlateSearchResult:
    """Ranked strings, alternatives and (with a registry) its exact, wildcard and ranked records.

    ``pattern`` (``?`` and ``[..]`` sets) restricts the strings and selects the wildcard records;
    without one, the wildcard records are those fitting every position's alternatives.
    """
    positions = alternatives(reading, min_p)
    user = parse_pattern(pattern, reading.classes, reading.length) if pattern else None
    pat = user if user is not None else plausible_pattern(positions)
    strings = beam_search(reading.log_probs, reading.classes, top, beam, user)
    result = PlateSearchResult(reading, positions, strings, pattern_text(pat), "user" if user else "alternatives",
                               registry)
    if registry is None:
        return result
    ranking = rank_registry(reading, registry)
    string_ranks = {t: r + 1 for r, (t, _) in enumerate(strings)}
    result.n_scored, result.n_other = len(ranking.indices), ranking.n_other
    result.ranked = [_hit("ranked", registry, int(i), s, r + 1, string_ranks)
                     for r, (i, s) in enumerate(zip(ranking.indices[:registry_top], ranking.scores, strict=False))]
    position = np.empty(len(registry), dtype=np.int64)  # record index -> place in the ranking
    position[ranking.indices] = np.arange(len(ranking.indices))
    exact = sorted((string_ranks[t], int(position[i])) for t in string_ranks for i in registry.records_of(t))
    exact = [r for _, r in exact]
    result.exact = [_hit("exact", registry, int(ranking.indices[r]), ranking.scores[r], r + 1, string_ranks)
                    for r in exact]
    mask = _allowed_mask(pat, reading.classes, reading.length)
    fits = np.flatnonzero(mask[np.arange(reading.length)[None, :], ranking.codes].all(1)) \
        if len(ranking.indices) else np.zeros(0, dtype=np.int64)
    result.n_wildcard = len(fits)
    result.wildcard = [_hit("wildcard", registry, int(ranking.indices[r]), ranking.scores[r], int(r) + 1,
                            string_ranks) for r in fits[:wildcard_max]]
    return result
