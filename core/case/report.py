"""The case report: what was received, what was done, what was produced, and what it is not.

:func:`build_report` collects the originals and their hashes, every step of the audit log, the
models with their cards' data and limits, the shortlist with scores and notes, the regeneration
check when given, the database searches recorded in the case (query and first hits, leads only),
and the plain statement that the candidates are synthetic investigative leads,
not evidence and not an identification. :meth:`Report.html` renders it as one self-contained HTML
file (images inline); the app prints the same HTML to PDF with Qt (its ``src`` names the images).
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

from core.case.audit import utc_now
from core.case.recorder import Case
from core.case.regenerate import RegenResult, summary
from core.case.roi import describe_regions, mark_regions, region_inset, regions_of
from core.case.schema import software
from core.case.search import SEARCH_NOTICE, hits_of, query_line, score_label, short_sha, strings_of, summary_line
from core.fileio import atomic_write
from core.images import open_image, tensor_to_pil
from core.workbench.export import MARK, NOTICE, marked_image
from core.workbench.operators import label as operator_label
from core.workbench.operators import operator

STATEMENT = (
    "The candidate images in this report are synthetic. A machine-learning model generated them from a very "
    "low resolution input: their details are plausible inventions, not recovered information. They are "
    "investigative leads only. They are not evidence and they are not an identification of any person, "
    "vehicle or object."
)
DOT = " \u00b7 "
#: Hits of each recorded search listed in the report.
REPORT_HITS = 10
CARD_SECTIONS = ("Data and licences", "Known failure modes")
STYLE = """
body { font-family: 'DejaVu Sans', Arial, sans-serif; font-size: 10pt; color: #111; }
h1 { font-size: 17pt; margin-bottom: 2pt; } h2 { font-size: 13pt; margin-top: 14pt; color: #7a1f1f; }
h3 { font-size: 11pt; margin-bottom: 2pt; }
table.grid { border-collapse: collapse; } table.grid td, table.grid th { border: 1px solid #999; padding: 3px; }
th { background: #eee; text-align: left; } code { font-family: 'DejaVu Sans Mono', monospace; font-size: 8pt; }
.statement { background: #7a1f1f; color: white; padding: 6px; font-weight: bold; }
.bad { color: #b00000; font-weight: bold; } .ok { color: #1a6b1a; font-weight: bold; }
.small { font-size: 8pt; color: #444; }
"""


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _png(img: Image.Image, synthetic: bool) -> bytes:
    """PNG bytes; a candidate's carry the notice in their metadata, as every exported candidate does."""
    info = PngImagePlugin.PngInfo()
    if synthetic:
        info.add_text("Description", NOTICE)
        info.add_text("varsr:mark", MARK)
    buf = io.BytesIO()
    img.save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def _enlarge(img: Image.Image, box: int) -> Image.Image:
    """Nearest-neighbour enlargement by a whole factor (or a shrink) to fit ``box`` pixels."""
    w, h = img.size
    k = max(1, min(box // max(1, w), box // max(1, h)))
    out = img.convert("RGB").resize((w * k, h * k), Image.Resampling.NEAREST)
    if out.width > box or out.height > box:
        out.thumbnail((box, box), Image.Resampling.LANCZOS)
    return out


def card_sections(card: Path) -> dict[str, list[str]]:
    """The lines of a model card's data and limits sections (empty when the card is absent)."""
    if not card.is_file():
        return {}
    out: dict[str, list[str]] = {}
    current = None
    for line in card.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            current = line[3:].strip() if line[3:].strip() in CARD_SECTIONS else None
            if current:
                out[current] = []
        elif current and line.strip():
            out[current].append(line.strip())
    return out


def _md_lines(lines: list[str]) -> str:
    """The few Markdown shapes the cards use: bullets and paragraphs."""
    def clean(t: str) -> str:
        return _e(re.sub(r"\*\*|`", "", t))

    parts, items, para = [], [], []
    for ln in lines + [""]:
        if ln.startswith("- "):
            if para:
                parts.append(f"<p>{clean(' '.join(para))}</p>")
                para = []
            items.append(f"<li>{clean(ln[2:])}</li>")
        else:
            if items:
                parts.append("<ul>" + "".join(items) + "</ul>")
                items = []
            if ln:
                para.append(ln)
            elif para:
                parts.append(f"<p>{clean(' '.join(para))}</p>")
                para = []
    return "".join(parts)


def _geo(region: dict[str, Any]) -> str:
    """A region's coordinates for reading (two decimals; the log keeps them exact)."""
    def fmt(v: Any) -> Any:
        return [fmt(x) for x in v] if isinstance(v, list) else round(float(v), 2)

    geo = region.get("box") or region.get("eyes") or region.get("quad")
    return json.dumps(fmt(geo)) if geo else ""


def _fmt_edges(edges: list[Any]) -> str:
    """Cell edges as fractions of the row width, e.g. ``0.05|0.21|…|0.97``."""
    return "|".join(f"{float(e):.2f}" for e in edges if isinstance(e, (int, float)))


def describe(entry: dict[str, Any]) -> str:
    """One readable line for an audit entry (its raw JSON when its details are not what this program writes:
    a log from a newer version, or edited)."""
    try:
        return _describe(entry)
    except Exception:  # noqa: BLE001 - any malformed detail: show the entry as it is, never fail the listing
        text = json.dumps(entry.get("details"), ensure_ascii=False, default=str)
        more = "\u2026" if len(text) > 300 else ""
        return f"{str(entry.get('action', '?')).replace('_', ' ')}: {text[:300]}{more}"


def _describe(entry: dict[str, Any]) -> str:
    a, d = entry.get("action", "?"), entry.get("details") or {}
    if a == "case_created":
        version = (d.get("software") or {}).get("varsr_studio")
        return f"case created (case format {d.get('format_version')}, VarSR Studio {version})"
    if a == "evidence_loaded":
        size = "x".join(str(v) for v in d.get("image_size") or [])
        return f"evidence loaded: {d.get('name')} ({size}, {d.get('source')}), SHA-256 {d.get('sha256')}"
    if a == "work_adopted":
        r = d.get("region") or {}
        return (f"work done before the case was created, adopted: evidence SHA-256 {d.get('evidence_sha256')}, "
                f"region {r.get('kind')} {_geo(r)}, {len(d.get('requests') or [])} candidate "
                f"set(s), shortlist {', '.join(d.get('shortlist') or []) or 'empty'}")
    if a == "original_copied":
        return f"{d.get('role')} copied byte for byte into the case as {d.get('file')} ({d.get('size_bytes')} bytes)"
    if a == "region_set":
        r = d.get("region") or {}
        return f"region of interest: {r.get('kind')} {_geo(r)}".strip()
    if a == "settings_changed":
        op = d.get("consistency_operator")
        under = f", consistency under {operator_label(str(op))}" if op else ""
        n = d.get("cells")
        bounds = d.get("cell_bounds") or []
        equal = isinstance(n, int) and n > 0 and len(bounds) == n - 1 and all(
            isinstance(b, (int, float)) and abs(b - (i + 1) / n) < 1e-6 for i, b in enumerate(bounds))
        edges = d.get("cell_edges") or [0.0, *bounds, 1.0]
        moved = not equal or bool(d.get("cell_edges"))
        cells = f"{n} cell(s)" + (f" at {_fmt_edges(edges)}" if moved and isinstance(n, int) and n > 1 else "")
        cells += ", light on dark (inverted)" if d.get("cell_inverted") else ""
        return (f"settings: domain {d.get('domain')}, {cells}, model "
                f"{d.get('model_override') or 'chosen by crop size'}{under}")
    if a == "candidates_generated":
        ids = d.get("candidates") or []
        span = f"{ids[0]}\u2013{ids[-1]}" if len(ids) > 1 else (ids[0] if ids else "")
        bits = [f"{d.get('set')}: {d.get('n')} \u00d7 {d.get('kind')} from {d.get('model')}"]
        for key, label in (("seed", "seed"), ("temperature", "T"), ("parent", "from"), ("cells", "cells")):
            if d.get(key) is not None:
                bits.append(f"{label} {d[key]}")
        if d.get("sliders"):
            bits.append(", ".join(f"{k} {v:+.2f}" for k, v in d["sliders"].items()))
        if d.get("reference_sha256"):
            bits.append(f"reference {d['reference_sha256'][:16]}\u2026")
        return " \u00b7 ".join(bits) + f" \u2192 {span}"
    if a == "shortlist_changed":
        bits = []
        if d.get("starred"):
            bits.append("starred " + ", ".join(d["starred"]))
        if d.get("unstarred"):
            bits.append("removed " + ", ".join(d["unstarred"]))
        return "shortlist: " + ("; ".join(bits) or "reordered") + f" (now {', '.join(d.get('order') or []) or 'empty'})"
    if a == "note_set":
        return f"note on {d.get('candidate')}: \u201c{d.get('note')}\u201d"
    if a == "case_saved":
        return f"case saved ({d.get('candidates')} candidates, {d.get('shortlist')} shortlisted)"
    if a == "case_opened":
        extra = " (unsaved work recovered)" if d.get("recovered_from_autosave") else ""
        return f"case opened{extra}: {d.get('audit')}" + (f"; warnings: {'; '.join(d['warnings'])}"
                                                           if d.get("warnings") else "")
    if a == "regeneration_verified":
        return f"regeneration verified: {d.get('summary')}"
    if a == "search_run":
        return summary_line(d)
    if a == "shortlist_exported":
        leads = d.get("leads") or []
        text = (f"shortlist exported to {d.get('folder')}: {len(leads)} lead(s) ({', '.join(leads)})"
                + (", with unmarked copies on the examiner's request" if d.get("unmarked_copies") else ""))
        if d.get("before_case"):
            text += f"; made {str(d.get('made_utc') or '?')[:19].replace('T', ' ')} UTC, before the case was created"
        return text
    if a == "original_removed":
        return (f"{d.get('role')} original removed from the case: {d.get('name')} ({d.get('file')}), SHA-256 "
                f"{d.get('sha256')}; no candidate or search derived from it" + (f"; why: {d['why']}" if d.get("why")
                                                                                  else ""))
    text = json.dumps(d, ensure_ascii=False)
    more = "\u2026" if len(text) > 300 else ""
    return f"{a.replace('_', ' ')}: {text[:300]}{more}"


@dataclass
class Report:
    """A rendered-to-be report: its sections as HTML fragments and its images as PNG bytes."""

    title: str
    parts: list[str | Callable[[Callable[[str], str]], str]] = field(default_factory=list)
    images: dict[str, bytes] = field(default_factory=dict)

    def add_image(self, key: str, img: Image.Image, synthetic: bool = False) -> str:
        self.images[key] = _png(img, synthetic)
        return key

    def img(self, key: str, width: int, height: int) -> Callable[[Callable[[str], str]], str]:
        return lambda src: f'<img src="{_e(src(key))}" width="{width}" height="{height}" alt="{_e(key)}"/>'

    def html(self, src: Callable[[str], str] | None = None) -> str:
        """The whole document; ``src(key)`` gives each image's URL (default: inline data URLs)."""
        def data_url(key: str) -> str:
            return "data:image/png;base64," + base64.b64encode(self.images[key]).decode("ascii")

        s = src or data_url
        body = "".join(p if isinstance(p, str) else p(s) for p in self.parts)
        return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"/><title>{_e(self.title)}</title>'
                f"<style>{STYLE}</style></head><body>{body}</body></html>\n")


def _join(*parts: str | Callable[[Callable[[str], str]], str]) -> Callable[[Callable[[str], str]], str]:
    """Fragments and images (rendered with the document's ``src``) as one part."""
    return lambda src: "".join(p if isinstance(p, str) else p(src) for p in parts)


def _statement() -> str:
    return f'<p class="statement">{_e(MARK)}. {_e(STATEMENT)}</p>'


def build_report(case: Case, regeneration: list[RegenResult] | None = None,
                 models_root: str | Path | None = None) -> Report:
    """The report of ``case`` as it is now (notes synced, nothing saved)."""
    case.sync_notes()
    s = case.session
    root = Path(models_root) if models_root else s.models_root
    rep = Report(title=f"VarSR Studio case report: {case.name}")
    P = rep.parts.append
    P(f"<h1>{_e(rep.title)}</h1>")
    P(_statement())
    sw = software()
    P('<table class="grid">'
      + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in (
          ("Case", case.name), *((label, case.details[key]) for key, label in (
              ("case_number", "Case number"), ("title", "Title"), ("agency", "Agency")) if key in case.details),
          ("Examiner", case.examiner), ("Created (UTC)", case.created_utc),
          ("Last saved (UTC)", case.saved_utc or "not saved"), ("Report made (UTC)", utc_now()),
          ("Software", f"VarSR Studio {sw['varsr_studio']}, torch {sw['torch']}, Python {sw['python']}"),
          ("Machine", sw["platform"])))
      + "</table>")

    # originals
    P("<h2>1. Originals received</h2>")
    P("<p>Each original is kept in the case as a byte-identical, read-only copy; its SHA-256 was taken when it "
      "was loaded and is checked again whenever the case is opened.</p>")
    changed = case.check_originals()
    for i, o in enumerate(case.originals.values()):
        regions = regions_of(case, o.sha256)
        try:
            full = open_image(case.original_path(o.sha256), "RGB").image  # as the evidence was read: EXIF applied
            thumb = mark_regions(_enlarge(full, 320 if regions else 220), full.size, regions)
            key = rep.add_image(f"original_{i}", thumb)
            picture = rep.img(key, thumb.width, thumb.height)
            inset = region_inset(full, regions, min_scale=1.5 * thumb.width / full.width)  # only a real zoom
            if inset is not None:
                picture = _join(picture, "<br/>", rep.img(rep.add_image(f"original_{i}_region", inset), inset.width,
                                                          inset.height), f"<br/><span class='small'>"
                                f"{_e(describe_regions(regions))} (below: enlarged)</span>")
            elif regions:
                picture = _join(picture, f"<br/><span class='small'>{_e(describe_regions(regions))}</span>")
        except Exception:  # noqa: BLE001 - a missing or unreadable copy is reported below, not fatal
            from core.video.frames import is_video

            picture = ("<p class='small'>(a video clip, not pictured: a frame used as the evidence is an original "
                       "of its own)</p>" if is_video(o.name) else "<p class='bad'>(the copy cannot be read)</p>")
        state = ("<span class='bad'>DOES NOT MATCH its recorded hash</span>"
                 if any(o.file in c for c in changed) else "<span class='ok'>matches its recorded hash</span>")
        P('<table class="grid"><tr><td rowspan="2">')
        P(picture)
        P(f"</td><td><b>{_e(o.name)}</b> ({_e(o.role)}, {_e(o.source)}), {o.size_bytes} bytes, "
          + (f"{'x'.join(str(v) for v in o.image_size)} px, " if o.image_size else "")
          + f"in the case as {_e(o.file)}, added {_e(o.added_utc)}"
          f"</td></tr><tr><td>SHA-256 <code>{_e(o.sha256)}</code><br/>On disk now: {state}</td></tr></table><br/>")
    if not case.originals:
        P("<p>No original is recorded in this case.</p>")

    # steps
    check = case.log_check()
    P("<h2>2. Processing steps (from the audit log)</h2>")
    P(f"<p class='{'ok' if check.ok else 'bad'}'>{_e(check.summary())}</p>")
    P("<p class='small'>Each entry carries the SHA-256 of the one before it; the case records the last entry's "
      f"hash at every save. Current head: <code>{_e(case.log.head)}</code></p>")
    P('<table class="grid" width="100%"><tr><th width="4%">#</th><th width="17%">time (UTC)</th>'
      '<th width="17%">examiner</th><th width="62%">step</th></tr>')
    for e in case.log.entries():
        P(f"<tr><td>{_e(e.get('seq'))}</td><td>{_e(str(e.get('utc', ''))[:19]).replace('T', '<br/>')}</td>"
          f"<td>{_e(e.get('actor'))}</td><td>{_e(describe(e))}</td></tr>")
    P("</table>")

    # models
    P("<h2>3. Models</h2>")
    models: dict[str, dict[str, Any]] = {}
    for c in s.candidates.values():
        r = c.recipe
        models.setdefault(str(r.get("model")), r)
    if not models:
        P("<p>No candidate was generated.</p>")
    for name, r in models.items():
        P(f"<h3>{_e(name)}</h3><p>{_e(r.get('domain'))}: {'x'.join(map(str, r.get('lr_size') or []))} \u2192 "
          f"{'x'.join(map(str, r.get('hr_size') or []))} (x{_e(r.get('scale'))}); weights SHA-256 "
          f"<code>{_e(r.get('weights_sha256'))}</code></p>")
        sections = card_sections(root / name / "card.md")
        if not sections:
            P(f"<p class='bad'>The model card of {_e(name)} is not installed here: see its bundle.</p>")
        for title in CARD_SECTIONS:
            if sections.get(title):
                P(f"<p><b>{_e(title)}</b> (from the model card)</p>{_md_lines(sections[title])}")

    # shortlist
    P("<h2>4. Shortlist</h2>")
    op = operator(s.consistency_operator)
    P(f"<p>{_e(NOTICE)} Scores: consistency with the input, mean |LR \u2212 degrade(candidate)| on the 0\u2013255 "
      f"scale (lower is closer) and LR-PSNR in dB (higher is closer), where degrade is the degradation the examiner "
      f"assumed the camera applied: in this case {_e(op.describe())}, not the camera's real "
      f"{'blur, noise or compression' if op.is_box else 'noise or compression'}. Each lead says which degradation "
      "its scores are under. Consistency "
      "says nothing about the truth.</p>")
    regen = {r.candidate: r for r in regeneration or []}
    if not s.shortlist:
        P("<p>The shortlist is empty.</p>")
    for rank, e in enumerate(s.shortlist, start=1):
        c = s.candidates[e.candidate_id]
        r = c.recipe
        marked, _ = marked_image(tensor_to_pil(c.image), f"{rank}. {c.id}", min_width=192)
        big = _enlarge(marked, 260)
        lr = _enlarge(tensor_to_pil(c.lr), 96)
        k1, k2 = rep.add_image(f"lead_{rank}", big, synthetic=True), rep.add_image(f"lead_{rank}_input", lr)
        bits = [f"kind {c.kind}", f"model {r.get('model')}"]
        for key, label in (("seed", "seed"), ("index", "index"), ("temperature", "T"), ("parent", "from")):
            if r.get(key) is not None:
                bits.append(f"{label} {r[key]}")
        if r.get("sliders"):
            bits.append(", ".join(f"{k} {v:+.2f}" for k, v in r["sliders"].items()))
        enforced = "yes (" + _e(r.get("method", "")) + ")" if c.kind == "consistent" else "no"
        rg = regen.get(c.id)
        P('<table class="grid"><tr><td rowspan="6">')
        P(rep.img(k1, big.width, big.height))
        P("</td><td>")
        P(rep.img(k2, lr.width, lr.height))
        P(f"<br/><span class='small'>input as the model saw it</span></td></tr>"
          f"<tr><td><b>{rank}. {_e(c.id)}</b> \u2014 {_e(DOT.join(bits))}</td></tr>"
          f"<tr><td>L1 {c.l1:.3f} / 255 \u00b7 LR-PSNR {c.lr_psnr:.2f} dB, under {_e(operator_label(c.scored_under))}"
          "</td></tr>"
          f"<tr><td>consistency enforced: {enforced}</td></tr>"
          f"<tr><td>note: {_e(e.note) if e.note.strip() else '<i>none</i>'}</td></tr>"
          f"<tr><td>regeneration: {_e(rg.line()) if rg else 'not checked in this report'}</td></tr></table><br/>")

    # regeneration
    P("<h2>5. Regeneration check</h2>")
    if regeneration:
        ok = all(x.identical for x in regeneration)
        P(f"<p class='{'ok' if ok else 'bad'}'>{_e(summary(regeneration))}</p>"
          f"<p class='small'>Rebuilt from the case's originals and recipes on {_e(sw['platform'])} with torch "
          f"{_e(sw['torch'])}.</p>")
    else:
        P("<p>Not run for this report. Run <code>varsr-sample --case CASE --verify</code> or Case \u2192 Verify "
          "regeneration.</p>")
    _searches(case, P)
    P("<h2>Statement</h2>")
    P(_statement())
    return rep


def _searches(case: Case, P: Callable[[str], None]) -> None:
    """Section 6: each database search recorded in the case, its query and its first hits."""
    P("<h2>6. Database searches</h2>")
    P(f"<p class='statement'>{_e(SEARCH_NOTICE)}</p>")
    if not case.searches:
        P("<p>No face gallery or plate registry search was recorded in this case.</p>")
        return
    P("<p>Each search used the candidates named below; the index or registry is named with the SHA-256 it had "
      f"when searched. The first {REPORT_HITS} hits of each are listed (all are in the case file). A hit only says "
      "that a record resembles synthetic candidates.</p>")
    for rec in case.searches:
        kind = "Face gallery search" if rec.get("kind") == "faces" else "Plate registry search"
        P(f"<h3>{_e(rec.get('id'))}: {kind}, {_e(str(rec.get('utc', ''))[:19].replace('T', ' '))} UTC</h3>")
        P(f"<p>{_e(query_line(rec))}</p>")
        if strings_of(rec):
            P("<p>Ranked plate strings: " + _e(", ".join(f"{x.get('text')} ({x.get('score')})"
                                                        for x in strings_of(rec)[:REPORT_HITS])) + "</p>")
        hits = hits_of(rec)
        if not hits:
            P("<p>No record was found.</p>")
            continue
        if rec.get("kind") == "faces":
            head, rows = ("rank", "record", score_label(rec), "matched candidate", "gallery photo (SHA-256)"), [
                (h.get("rank"), h.get("record_id"), h.get("distance"), h.get("candidate"),
                 f"{h.get('photo')} ({short_sha(h.get('photo_sha256'))})"
                 + ("" if h.get("face_found", True) else ", no face found")) for h in hits[:REPORT_HITS]]
        else:
            head, rows = ("match", "rank", "plate", "log P", "registry line", "record"), [
                (h.get("kind"), h.get("rank"), h.get("record_id"), h.get("score"), h.get("line"),
                 "; ".join(f"{k}={v}" for k, v in rec_cols.items()) if isinstance(rec_cols := h.get("record"), dict)
                 else "") for h in hits[:REPORT_HITS]]
        P('<table class="grid"><tr>' + "".join(f"<th>{_e(x)}</th>" for x in head) + "</tr>"
          + "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in rows) + "</table><br/>")
        if isinstance(rec.get("notes"), list) and rec["notes"]:
            P(f"<p class='small'>{_e('; '.join(map(str, rec['notes'])))}</p>")


def write_report_html(case: Case, path: str | Path, regeneration: list[RegenResult] | None = None,
                      models_root: str | Path | None = None) -> Path:
    """Write the self-contained HTML report atomically; returns its path."""
    path = Path(path)
    text = build_report(case, regeneration, models_root).html()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))
    return path
