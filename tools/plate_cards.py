"""Write the whole-plate figures of the current reader into the plate model cards.

    python tools/plate_cards.py runs/eval-choose.json runs/eval-mix.json [--note "..."]

Each argument is the ``--out`` JSON of ``python -m core.plates.evaluate`` (one polarity, ``--polarity
choose``, and both, ``--polarity mix``; any sizes). For every size in them, the cards of its model and
its ``-det`` baseline get (or have replaced) the section :data:`HEADING`: one table per polarity
mode with every reading, the number of plates and one standard error. Earlier sections stay as the
history they are.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADING = "## Real whole plates, current reader"
MODELS = {"2x4": "plate-char", "3x6": "plate-3x6", "4x8": "plate-4x8"}
MODES = {"choose": "one polarity, the one the reader is surer of",
         "mix": "both polarities, weighted (the batch's default)"}


def _reader_name(reader: str, model: str) -> str:
    names = {"varsr": f"{model} (16 candidates)", "det": f"{model}-det", "bicubic": "bicubic",
             "varsr+bicubic": f"{model} candidates + bicubic (mean; what the app and the batch read)"}
    return names.get(reader, reader)


def table(results: dict, px: str, model: str) -> list[str]:
    """The Markdown rows of one size of one evaluation."""
    def pc(row: dict, name: str) -> str:
        return f"{100 * row[name]:.1f} ± {100 * row[name + '_se']:.1f}"

    lines = ["| condition | reader | chars | top-10 strings | registry top 1 | registry top 10 | median rank "
             "| ECE (T=1 / fitted) |", "|---|---|---|---|---|---|---|---|"]
    for r in results["table"]:
        if r["px"] == px:
            lines.append(f"| {r['condition']} | {_reader_name(r['reader'], model)} | {pc(r, 'chars')} | "
                         f"{pc(r, 'strings_top10')} | {pc(r, 'registry_top1')} | {pc(r, 'registry_top10')} | "
                         f"{r['registry_rank_median']:.0f} | {r['ece']:.3f} / {r['ece_tempered']:.3f} |")
    return lines


def section(evals: list[dict], px: str, model: str, reader: dict, note: str) -> str:
    """The card section for one size: the reader it was measured with, then a table per polarity mode."""
    first = evals[0]
    out = [HEADING, "",
           f"{first['n_plates']} held-out real plates (UC3M-LP val one-row, OpenALPR end-to-end, Argentine), each "
           f"row boxed as an analyst would, reduced to {px} px per character, cut into equal cells, "
           f"{first['k']} candidates per cell; registry of {first['registry_size']:,} plates holding every true "
           "plate and 20 one-character neighbours of each (%, ± one standard error; ECE of the per-position "
           "probabilities at T = 1 and at the temperature fitted on the other half of the plates). Read by "
           f"`plate-reader` ({reader['char']:.1%} of held-out UC3M-LP characters at exact boxes, "
           f"{reader['equal']:.1%} in equal cells).", ""]
    if note:
        out += [note, ""]
    for ev in evals:
        mode = ev.get("polarity", "choose")
        out += [f"**{MODES.get(mode, mode)}** (`python -m core.plates.evaluate --sizes {px} --polarity {mode}`):", "",
                *table(ev, px, model), ""]
    return "\n".join(out).rstrip() + "\n"


def replace_section(card: str, text: str) -> str:
    """``card`` with its :data:`HEADING` section replaced by ``text`` (appended when there is none)."""
    from core.evaluation.cards import replace_section as replace

    return replace(card, HEADING, text)


def main(argv: list[str] | None = None) -> int:
    from core.evaluation.cards import card_tool_parser
    from core.nets.classifier import default_path

    args = card_tool_parser(__doc__, "evals", "core.plates.evaluate --out JSON files", ROOT / "resources" / "models"
                            ).parse_args(argv)

    evals = [json.loads(f.read_text(encoding="utf-8")) for f in args.evals]
    meta = json.loads(default_path("plate-reader").with_suffix(".json").read_text(encoding="utf-8"))
    held = meta["extra"]["heldout"]
    reader = {"char": held["uc3m-val"]["char"], "equal": held["uc3m-val-equal-cells"]["char"]}
    sizes = sorted({r["px"] for ev in evals for r in ev["table"]})
    for px in sizes:
        model = MODELS.get(px)
        if model is None:
            print(f"{px}: no plate model for this size, skipped", file=sys.stderr)
            continue
        text = section([ev for ev in evals if any(r["px"] == px for r in ev["table"])], px, model, reader, args.note)
        for name in (model, f"{model}-det"):
            card = args.models / name / "card.md"
            card.write_text(replace_section(card.read_text(encoding="utf-8"), text), encoding="utf-8")
            print(f"wrote {card}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
