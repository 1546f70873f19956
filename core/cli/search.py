"""``varsr-search``: search databases with candidates instead of one poor image, without the GUI.

    varsr-search faces index GALLERY --out INDEX        # a folder of photos, or a CSV of path,record_id
    varsr-search faces query INDEX CANDIDATES_DIR [--top 20] [--mode min|knn] [--k 3] [--diverse K]
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
    q.add_argument("--mode", choices=("min", "knn"), default="min",
                   help="record distance: min over candidates (default) or mean of the k nearest")
    q.add_argument("--k", type=int, default=3, help="candidates averaged in --mode knn (default 3)")
    q.add_argument("--diverse", type=int, help="search with a diverse pick of this many candidates")
    q.add_argument("--weights", type=Path, help="the embedder's weights file, if not the default")
    q.add_argument("--out", type=Path, help="also write the JSON to this file")
    q.set_defaults(func=run_query)
    return p


def run_index(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core.search.embedders import load_embedder
    from core.search.gallery import build_index

    embedder = load_embedder(args.embedder, args.weights)
    bars: list[tqdm] = []  # made at the first photo, so an early error prints no empty bar

    def progress(i: int, n: int) -> None:
        if not bars:
            bars.append(tqdm(total=n, unit="photo", desc="indexing", file=sys.stderr, disable=args.quiet))
        bars[0].update(i - bars[0].n)

    try:
        report = build_index(args.gallery, args.out, embedder, progress=progress)
    finally:
        for bar in bars:
            bar.close()
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
    result = search_frames(index, frames, names, embedder, mode=args.mode, k=args.k, top=args.top,
                           diverse=args.diverse)
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: args.func(args), PROG)


if __name__ == "__main__":
    sys.exit(main())
