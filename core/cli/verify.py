"""``varsr-sample --case CASE --verify``: regenerate a case's shortlist and compare it pixel by pixel."""

from __future__ import annotations

import argparse
import json
import sys

from core.errors import CaseError


def verify_case_cli(args: argparse.Namespace) -> int:
    """Print one row (or JSON object) per candidate; :class:`CaseError` (exit 2, one line) on any failure."""
    from core.case import open_case
    from core.case.regenerate import summary, verify_case

    case = open_case(args.case, models_root=args.models)
    check = case.audit_check
    ids = list(case.session.candidates) if args.all else None
    results = verify_case(case, ids, models_root=args.models)
    if args.json:
        print(json.dumps({"case": case.name, "audit": check.summary() if check else None,
                          "warnings": case.warnings, "candidates": [r.to_dict() for r in results]}, indent=1))
    else:
        print(f"{'candidate':<10} {'kind':<15} {'model':<16} result")
        for r in results:
            print(f"{r.candidate:<10} {r.kind:<15} {r.model:<16} {r.line()}")
        print(check.summary() if check else "")
    problems = []
    if check is not None and not check.ok:
        problems.append(check.summary())
    problems += case.warnings
    if any(not r.identical for r in results):
        problems.insert(0, summary(results))
    if problems:
        raise CaseError(f"{case.name}: " + "; ".join(problems))
    print(f"varsr-sample: {case.name}: {summary(results)}", file=sys.stderr)
    return 0
