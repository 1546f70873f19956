"""Help > Guide: a short user guide, the workflow and every shortcut. The shortcut tables are built from
:data:`varsr_gui.actions.ITEMS`, so the guide never lists a shortcut the menus do not have."""

from __future__ import annotations

import html

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from varsr_gui.actions import ITEMS, MENUS, Action

WORKFLOW = (
    ("Open the evidence", "File > Open evidence (or drop or paste an image). The file is only read, never "
     "changed; its SHA-256 is recorded. File > New case first keeps every step in an audit log."),
    ("Choose the region", "Drag a box around the face, plate or digits (B), or press E and click the two eye "
     "centres of a tiny face, F to let the face detector propose faces, Q for a tilted plate's 4 corners, W "
     "for the whole image. The input panel shows your crop beside what the model sees; pink crosses on a "
     "face box mark where the model expects the eyes. The Eye-shift test redraws the candidates with the "
     "framing moved by one pixel and says how much they change."),
    ("Check the model", "Auto takes the largest model input that is not larger than your crop, so the crop is "
     "never enlarged, and says why under the model list; pick another to override it."),
    ("Generate", "Ctrl+Return draws many candidates. Each is one plausible image that agrees with the "
     "evidence: the score says how well it agrees, never how likely or how good it is. A face region is "
     "checked too: the face detector looks for a face, and the model's encoder says whether the crop is "
     "unlike its training inputs (flat, noise, badly framed)."),
    ("Steer and compare", "Select a candidate; the attribute sliders (better direction first) steer it. A "
     "steered candidate that agrees less with the evidence is flagged. Keep adds it to the grid."),
    ("Shortlist and export", "S stars a candidate into the shortlist; order it and add notes. Ctrl+E exports "
     "the shortlist, each image marked as a synthetic candidate, never evidence."),
    ("Undo", "Ctrl+Z undoes a region, eye clicks, slider moves (R reset included), stars, shortlist order and "
     "note edits."),
    ("Report", "With a case open: verify regeneration (Ctrl+Shift+V) and export the report (Ctrl+Shift+R)."),
)


def key_text(key: object) -> str:
    """A shortcut as the menus show it on this platform."""
    seq = QKeySequence(key)  # type: ignore[call-overload]
    return seq.toString(QKeySequence.SequenceFormat.NativeText)


def shortcut_rows() -> list[tuple[str, str, str]]:
    """(menu, item, shortcut) for every action with a shortcut, in menu order."""
    rows = []
    for spec in ITEMS:
        if isinstance(spec, Action) and spec.key is not None:
            text = key_text(spec.key)
            if text:
                rows.append((MENUS[spec.menu].replace("&", ""), spec.text.replace("&", "").rstrip("\u2026"), text))
    return rows


def guide_html() -> str:
    """The guide as HTML: the notice, the workflow, then the shortcut table."""
    steps = "".join(f"<li><b>{html.escape(t)}</b>: {html.escape(d)}</li>" for t, d in WORKFLOW)
    rows = "".join(f"<tr><td>{html.escape(m)}</td><td>{html.escape(i)}</td><td><b>{html.escape(k)}</b></td></tr>"
                   for m, i, k in shortcut_rows())
    return ("<h2>VarSR Studio guide</h2><p><b>Every candidate is a synthetic image: an investigative lead, never "
            "evidence and never an identification.</b></p>"
            f"<h3>The workflow</h3><ol>{steps}</ol>"
            "<h3>Shortcuts</h3><table cellpadding='3'><tr><th align='left'>Menu</th><th align='left'>Item</th>"
            f"<th align='left'>Key</th></tr>{rows}</table>")


def guide_dialog(parent: QWidget | None = None) -> QDialog:
    """A non-modal dialog showing :func:`guide_html` (object name ``guide_dialog``)."""
    dlg = QDialog(parent)
    dlg.setObjectName("guide_dialog")
    dlg.setWindowTitle("VarSR Studio \u2014 Guide")
    lay = QVBoxLayout(dlg)
    text = QTextBrowser()
    text.setObjectName("guide_text")
    text.setHtml(guide_html())
    lay.addWidget(text)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.rejected.connect(dlg.close)
    lay.addWidget(buttons)
    dlg.resize(640, 680)
    return dlg
