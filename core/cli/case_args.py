"""The ``--case`` options of ``varsr-search`` queries: a query reads its candidates from a case folder,
and ``--record`` keeps the search (query and hits) in the case."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.errors import CaseError, VarSRError

#: The command whose queries take these options.
PROG = "varsr-search"


def add_case_args(q: argparse.ArgumentParser, what: str) -> None:
    """``--case``, ``--all`` and ``--record`` for a query reading its candidates from a case folder."""
    q.add_argument("--case", type=Path, help=f"a case folder: search with its shortlisted {what}")
    q.add_argument("--all", action="store_true", help=f"with --case: every {what.rstrip('s')} of the case, "
                   "not only the shortlist")
    q.add_argument("--record", action="store_true",
                   help="with --case: also record the search (query and hits) in the case and save it")


def check_case_args(args: argparse.Namespace, given: bool, source: str) -> None:
    """One-line errors for a wrong mix of candidate sources and case options."""
    if args.case is not None and given:
        raise VarSRError(f"give either {source} or --case CASE, not both")
    if args.case is None and (args.all or args.record):
        raise VarSRError(f"{'--all' if args.all else '--record'} needs --case CASE")
    if args.case is not None and not args.case.is_dir():
        raise VarSRError(f"{args.case}: no such case folder")


def record_in_case(folder: Path, entry: dict) -> dict:
    """Open the case, record the search in it and save it (refused while it has unrecovered unsaved work)."""
    from core.case.reader import read_case  # loaded when used: the CLI starts without torch
    from core.case.schema import AUTOSAVE
    from core.workbench.session import Session

    data = read_case(folder)
    if data.recovery is not None and data.recovery.usable:
        raise CaseError(f"case {folder.name} has unsaved work from the app ({AUTOSAVE}): open and save it in "
                        "the app first, then record the search")
    session = Session()
    session.refresh_models()  # the manifest's model records keep what the installed bundles say
    case = data.into(session)
    rec = case.record_search(entry)
    case.save()
    print(f"{PROG}: recorded as {rec['id']} in case {folder.name} (audit log: {len(case.log)} entries)",
          file=sys.stderr)
    return rec


def case_warnings(info: dict) -> None:
    """Say on stderr when the case read for the query has an audit log that is not intact."""
    audit = str(info.get("audit", ""))
    if "NOT intact" in audit:
        print(f"{PROG}: warning: case {info.get('case')}: {audit}", file=sys.stderr)
