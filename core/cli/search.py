"""``varsr-search``: search databases with candidates instead of one poor image, without the GUI.

    varsr-search faces index GALLERY --out INDEX        # a folder of photos, or a CSV of path,record_id
    varsr-search faces query INDEX CANDIDATES_DIR [--top 20] [--mode auto|fused|min|knn] [--k 3] [--diverse K]
    varsr-search faces query INDEX --case CASE [--all] [--record]   # the case's shortlist (or all)
    varsr-search plates ...                              # plate registry search (core.cli.search_plates)

Results are printed as JSON on stdout; progress and errors go to stderr (one line, exit code 2).
Every hit is an investigative lead, never an identification.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from core.cli.case_args import add_case_args, case_warnings, check_case_args, record_in_case
from core.cli.common import run_cli
from core.cli.search_plates import add_cli as add_plates_cli

PROG = "varsr-search"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="{faces,plates}", required=True)
    add_faces_cli(sub)
    add_plates_cli(sub)
    return p


def add_faces_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``faces`` (``index`` and ``query``); each leaf sets ``func(args) -> exit code``."""
    from core.search.embedders import DLIB_NAME, EMBEDDERS
    from core.workbench.operators import CHOICES

    p = subparsers.add_parser("faces", help="face gallery: index photos, rank records against candidates")
    sub = p.add_subparsers(dest="faces_command", metavar="{index,query}", required=True)
    ix = sub.add_parser("index", help="index (or update the index of) a gallery")
    ix.add_argument("gallery", type=Path, help="a folder of photos (recursive) or a CSV of path,record_id rows")
    ix.add_argument("--out", type=Path, required=True, help="index folder (created; an existing index is updated)")
    ix.add_argument("--embedder", choices=EMBEDDERS, default=DLIB_NAME,
                    help=f"face embedder (default {DLIB_NAME}, bundled; facenet-vggface2 needs its weights)")
    ix.add_argument("--weights", type=Path, help="the embedder's weights file (default: bundled / torch cache)")
    ix.add_argument("--quiet", action="store_true", help="no progress bar")
    ix.set_defaults(func=run_index)
    q = sub.add_parser("query", help="ranked gallery records as JSON")
    q.add_argument("index", type=Path, help="an index folder made by 'faces index'")
    q.add_argument("candidates", type=Path, nargs="?",
                   help="folder of candidate images (e.g. varsr-sample output); or give --case")
    add_case_args(q, "face candidates")
    q.add_argument("--top", type=int, default=20, help="records to list (default 20)")
    q.add_argument("--mode", choices=("auto", "fused", "min", "knn"), default="auto",
                   help="record score: fused, the -det output and the candidates against the photos plus the -det "
                        "output against the photos degraded and restored as the probe was (the best measured; "
                        "docs/SEARCH.md); min over candidates; mean of the k nearest; auto (default): fused when "
                        "the query allows it (one face's candidates with its -det output), else min, saying why")
    q.add_argument("--condition", choices=CHOICES, default=None,
                   help="--mode fused: the condition the face was seen under, whose optics degrade the gallery "
                        "(default: ideal, the box filter; with --case, what the candidates were scored under)")
    q.add_argument("--k", type=int, default=3, help="candidates averaged in --mode knn (default 3)")
    q.add_argument("--diverse", type=int, help="search with a diverse pick of this many candidates")
    q.add_argument("--weights", type=Path, help="the embedder's weights file, if not the default")
    q.add_argument("--out", type=Path, help="also write the JSON to this file")
    q.set_defaults(func=run_query)
    return p


class _ProgressBar:
    """A tqdm progress callback ``(done, total)`` on stderr, made at its first call (so an early error
    prints no empty bar) and closed when done."""

    def __init__(self, desc: str, disable: bool = False) -> None:
        self.desc, self.disable = desc, disable
        self.bar: Any = None

    def __call__(self, i: int, n: int) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=n, unit="photo", desc=self.desc, file=sys.stderr, disable=self.disable)
        self.bar.update(i - self.bar.n)
        if i >= n:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_index(args: argparse.Namespace) -> int:
    from core.search.embedders import load_embedder
    from core.search.gallery import build_index

    embedder = load_embedder(args.embedder, args.weights)
    progress = _ProgressBar("indexing", args.quiet)
    try:
        report = build_index(args.gallery, args.out, embedder, progress=progress)
    finally:
        progress.close()
    for note in report.notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    for s in report.skipped[:20]:
        print(f"{PROG}: skipped {s['path']}: {s['reason']}", file=sys.stderr)
    print(f"{PROG}: {report.summary()} -> {report.folder}", file=sys.stderr)
    return 0


def run_query(args: argparse.Namespace) -> int:
    from core.errors import VarSRError
    from core.fileio import atomic_write
    from core.search.faces import embedder_for_index, read_candidate_folder, search_frames
    from core.search.gallery import load_index

    if args.top < 1:
        raise VarSRError(f"--top must be at least 1, not {args.top}")
    if args.k < 1:
        raise VarSRError(f"--k must be at least 1, not {args.k}")
    if args.diverse is not None and args.diverse < 1:
        raise VarSRError(f"--diverse must be at least 1, not {args.diverse}")
    check_case_args(args, args.candidates is not None, "a candidates folder")
    if args.case is None and args.candidates is None:
        raise VarSRError("give a folder of candidates or --case CASE")
    index = load_index(args.index)
    if args.case is not None:
        from core.case.search import ALL, SHORTLIST, case_face_candidates

        names, frames, info = case_face_candidates(args.case, ALL if args.all else SHORTLIST)
        case_warnings(info)
    else:
        names, frames = read_candidate_folder(args.candidates)
    embedder = embedder_for_index(index, args.weights)
    result, why_not = None, ""
    if args.mode == "fused" or (args.mode == "auto" and args.diverse is None):
        try:
            result = _search_fused(args, index, names, frames, embedder)
        except VarSRError as e:
            if args.mode == "fused":
                raise
            why_not = f"not fused ({e}): ranked by min"
    if result is None:
        if args.condition is not None and args.mode != "auto":
            raise VarSRError("--condition is for --mode fused")
        result = search_frames(index, frames, names, embedder, mode="min" if args.mode == "auto" else args.mode,
                               k=args.k, top=args.top, diverse=args.diverse)
        if why_not:
            result.notes.insert(0, why_not)
    out = result.to_dict()
    out.update(top=args.top, diverse=args.diverse)
    if args.case is not None:
        out["case"] = info
        out.update(source=f"case {info['selection']}", candidates_offered=names)
        if args.record:
            from core.case.search import face_entry

            out["recorded_as"] = record_in_case(args.case, face_entry(out))["id"]
    else:
        out["candidates_folder"] = str(args.candidates)
    text = json.dumps(out, indent=1)
    if args.out:
        atomic_write(args.out, lambda p: p.write_text(text + "\n", encoding="utf-8"))
    print(text)
    return 0


def _search_fused(args: argparse.Namespace, index: Any, names: list[str], frames: Any, embedder: Any) -> Any:
    """``--mode fused``: the probe from the case's candidates, or the folder's ``det.png`` and its model."""
    from core.errors import VarSRError
    from core.search.faces import degraded_query, search_fused
    from core.workbench.operators import operator

    if args.diverse is not None:
        raise VarSRError("--diverse is not used by --mode fused (it compares every candidate's mean distance)")
    if args.case is not None:
        from core.case.search import ALL, SHORTLIST, case_face_candidate_objects

        query = degraded_query(case_face_candidate_objects(args.case, ALL if args.all else SHORTLIST))
        if args.condition is not None:
            query.sigma = operator(args.condition).sigma
    else:
        query = _folder_query(args.candidates, names, frames, operator(args.condition).sigma)
        keep = [i for i, n in enumerate(names) if n != "det.png"]
        names, frames = [names[i] for i in keep], frames[keep]
        if not names:
            raise VarSRError(f"{args.candidates}: no candidates beside det.png")
    return search_fused(index, frames, names, query, embedder, top=args.top,
                        progress=_ProgressBar("degrading the gallery"))


def _folder_query(folder: Path, names: list[str], frames: Any, sigma: float) -> Any:
    """The fused probe of a ``varsr-sample`` folder: its ``det.png`` and the det model its manifest names."""
    import core
    from core.errors import VarSRError
    from core.search.faces import DegradedQuery

    try:
        det_info = json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("det")
    except (OSError, ValueError, AttributeError):
        det_info = None
    if not isinstance(det_info, dict) or "det.png" not in names or not isinstance(det_info.get("model"), str):
        raise VarSRError(f"{folder}: --mode fused needs the -det output and its model: a varsr-sample folder with "
                         "det.png in its manifest (varsr-sample writes it unless --det none)")
    det = core.load_model(det_info["model"])
    if det_info.get("weights_sha256") not in (None, det.weights_sha256):
        raise VarSRError(f"{folder}: det.png was made by other {det_info['model']} weights than the installed "
                         "ones; sample again with the installed model")
    return DegradedQuery(frames[names.index("det.png")][None], det, sigma, "det.png")




def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: args.func(args), PROG)


if __name__ == "__main__":
    sys.exit(main())
