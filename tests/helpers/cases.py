"""What the app's Generate does, and a session holding every kind of candidate a case records."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

import core
from core.workbench import session as S
from core.workbench.enforce import enforce_consistency


def generate(session: S.Session, model, n: int = 4, seed: int = 0, t: float = 1.0) -> S.CandidateSet:
    """What the app's Generate does: the session's crop, prepared for the model, sampled."""
    lrs, notes = session.prepare(model.config)
    source = {**session.source(), "notes": notes}
    if len(lrs) == 1:
        return session.add_set(f"{model.config.name} seed {seed}",
                               S.generate_candidates(model, lrs[0], n, seed, t, source=source))
    cells = S.generate_cells(model, lrs, n, seed, t, source=source)
    rows = [S.assemble_row(model, cells, [k] * len(cells)) for k in range(n)]
    return session.add_set("rows", rows)


def do_work(session: S.Session, evidence: Path, tmp_path: Path) -> dict[str, str]:
    """Every kind of candidate the app makes, each shortlisted: sample, sliders, more like this,
    consistency enforced, reference transfer, and a plate row. Returns kind -> candidate id."""
    face = core.load_model(session.models_root / "face-8")
    session.open_file(evidence)
    session.set_region(S.Region.from_box(16, 10, 32, 30))
    s1 = generate(session, face, 4, seed=3, t=0.8)
    base = session.candidates[s1.candidate_ids[1]]
    slid = session.add_set("sliders", [S.derive_with_sliders(face, base, {"mean/Male": 1.5, "diff/Smiling": -0.5})])
    more = session.add_set("more", S.more_like_this(face, base, 4, seed=2, temperature=0.3))
    cons = session.add_set("consistent", [enforce_consistency(base)])
    ref_path = tmp_path / "incoming" / "reference.png"
    Image.new("RGB", (120, 100), (150, 120, 100)).save(ref_path)
    ref = S.load_evidence(ref_path)
    src = {**base.recipe["source"], "reference": ref.to_dict()}
    refc = session.add_set("reference", [S.reference_transfer(face, base.lr, ref.image, ref.sha256, source=src,
                                                              eyes=((40.123456789, 45.5), (80.987654321, 46.25)))])
    session.set_domain("plate")
    session.set_cells(3)
    plate = core.load_model(session.models_root / "plate-char")
    rows = generate(session, plate, 4, seed=7)
    ids = {"sample": s1.candidate_ids[1], "sliders": slid.candidate_ids[0], "more": more.candidate_ids[2],
           "consistent": cons.candidate_ids[0], "reference": refc.candidate_ids[0], "row": rows.candidate_ids[1]}
    for cid in ids.values():
        session.star(cid)
    session.set_note(ids["sample"], "closest to the witness account")
    return ids


#: A case saved before the structural step (issue 15), with the tiny models it was made with.
OLD_CASE = Path(__file__).resolve().parents[1] / "data" / "case_v1"
#: Its candidate of each recipe kind.
OLD_CASE_IDS = {"sample": "C0002", "sliders": "C0005", "more-like-this": "C0008", "consistent": "C0010",
                "reference": "C0011", "row": "C0013"}
