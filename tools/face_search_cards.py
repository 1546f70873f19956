"""Write the identity-search figures of ``varsr-search-eval`` runs into the face model cards.

    python tools/face_search_cards.py runs/search.json [runs/search-12.json ...] [--note "..."]

Each argument is a ``varsr-search-eval --json`` file. Every block (a model pair under one condition)
goes to the card of its VarSR bundle and of its ``-det`` baseline, in the section :data:`HEADING`,
which a re-run replaces; earlier sections stay as the history they are.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HEADING = "## Identity search, held-out faces (current)"
#: methods shown, in order, with their names in the card
ROWS = {"bicubic": "bicubic", "det": "-det", "one": "1 candidate", "min": "16 candidates, min",
        "det+min": "-det + 16, min", "dd": "-det vs degraded gallery", "det+dd": "-det + degraded gallery",
        "fused": "**fused: -det + 16 + degraded gallery** (`--mode fused`, the app's default)"}


def _bundle(path: str) -> str:
    return Path(path).name


def block_table(block: dict) -> list[str]:
    """The Markdown rows of one block."""
    size = f"{block['probe_size']} px faces" if block.get("probe_size") else "x".join(map(str, block["lr_size"]))
    lines = [f"**{size}, `{block['degradation']}` input** ({block['varsr']} at T = {block['temperature']:g} "
             f"against {block['det']}):", "",
             "| searched with | top 1 | top 10 | top 20 | top 50 | median rank | p vs det (top 10 / 20) |",
             "|---|---|---|---|---|---|---|"]
    for key, name in ROWS.items():
        m = block["methods"].get(key)
        if m is None:
            continue
        cells = " | ".join(f"{m[f'top{k}']:.1f} ± {m[f'top{k}_se']:.1f}" for k in (1, 10, 20, 50))
        p = "" if key == "det" else f"{m['p_vs_det_top10']:.3f} / {m.get('p_vs_det_top20', float('nan')):.3f}"
        lines.append(f"| {name} | {cells} | {m['median_rank']:.0f} | {p} |")
    return lines + [""]


def section(runs: list[dict], bundle: str, note: str) -> str | None:
    """The card section of one bundle from every block that searched with it (or with it as ``-det``)."""
    blocks = [b for r in runs for b in r["blocks"] if bundle in (_bundle(b["varsr_path"]), b["det"])]
    if not blocks:
        return None
    r0 = runs[0]
    out = [HEADING, "",
           f"`varsr-search-eval`: {r0['probes']} probes of CelebA test identities never trained on, searched in a "
           f"gallery of {r0['gallery_photos']} photos = {r0['records']} records with the bundled embedder; "
           f"{r0['n_candidates']} candidates per probe, seed {r0['seed']} (%, ± one binomial standard error; p: "
           "exact McNemar test against det on the same probes). The degraded gallery is reduced with the "
           "probes' condition's nominal operator and restored by the -det model (docs/SEARCH.md).", ""]
    if note:
        out += [note, ""]
    for b in blocks:
        out += block_table(b)
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    from core.evaluation.cards import card_tool_parser, replace_section

    args = card_tool_parser(__doc__, "runs", "varsr-search-eval --json files", ROOT / "resources" / "models"
                            ).parse_args(argv)
    runs = [json.loads(f.read_text(encoding="utf-8")) for f in args.runs]
    blocks = [b for r in runs for b in r["blocks"]]
    names = {_bundle(b["varsr_path"]) for b in blocks} | {b["det"] for b in blocks}
    for name in sorted(names):
        card = args.models / name / "card.md"
        text = section(runs, name, args.note)
        if text is None or not card.is_file():
            print(f"{name}: no card under {args.models}, skipped", file=sys.stderr)
            continue
        card.write_text(replace_section(card.read_text(encoding="utf-8"), HEADING, text), encoding="utf-8")
        print(f"wrote {card}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
