"""Rewrite the held-out table in README.md from resources/models/*/eval.json (run after shipping)."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEADER = "| model | method | PSNR best | SSIM | LPIPS best | diversity | consistency L1 | acc best | <= 2 classes |"


def table() -> str:
    rows = [HEADER, "|---|---|---|---|---|---|---|---|---|"]
    for name in ("face-8", "face-16", "digit", "plate-char"):
        path = REPO / "resources" / "models" / name / "eval.json"
        if not path.is_file():
            continue
        ev = json.loads(path.read_text())
        for m in ("varsr", "det", "bicubic"):
            v = ev["methods"][m]
            dc = v.get("distinct_classes")
            le2 = f"{100 * (dc.get('1', 0) + dc.get('2', 0)):.1f} %" if dc else "-"
            acc = f"{v['acc_best']:.1f} %" if v.get("acc_best") is not None else "-"
            rows.append(f"| {name} ({ev['n_images']} imgs) | {m} | {v['psnr_best']:.2f} | {v['ssim_best']:.4f} | "
                        f"{v['lpips_best']:.4f} | {v['diversity']:.4f} | {v['consistency_l1']:.3f} | {acc} | {le2} |")
    return "\n".join(rows)


def main() -> None:
    readme = REPO / "README.md"
    text = readme.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(HEADER) + r"\n(\|.*\n)+")
    readme.write_text(pattern.sub(table() + "\n", text), encoding="utf-8")


if __name__ == "__main__":
    main()
