"""Help > About: the 'lead, not evidence' statement, the installed model bundles and their cards."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

import core
from core.errors import BundleError
from core.model.bundle import list_models, read_config

CARD = "card.md"
NAME_ROLE = Qt.ItemDataRole.UserRole


def bundle_summary(folder: Path) -> str:
    """One line about a bundle: domain, input and output size, stochastic or not."""
    try:
        cfg = read_config(folder)
    except BundleError as e:
        return f"unreadable config: {e}"
    kind = "deterministic baseline" if cfg.latent_dim == 0 else f"latent {cfg.latent_dim}"
    return (f"{cfg.domain} \u00b7 {cfg.lr_size[0]}x{cfg.lr_size[1]} \u2192 "
            f"{cfg.hr_size[0]}x{cfg.hr_size[1]} \u00b7 {kind}")


def read_card(folder: Path) -> str | None:
    """The bundle's model card (Markdown), or None when it has none (or it is unreadable)."""
    try:
        return (folder / CARD).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


class AboutDialog(QDialog):
    """The bundles under ``models_root`` on the left, the selected one's card on the right."""

    def __init__(self, models_root: Path, missing: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About VarSR Studio")
        self.resize(900, 620)
        self.models_root = Path(models_root)
        lay = QVBoxLayout(self)
        head = QLabel(f"<h2>VarSR Studio {core.__version__}</h2>"
                      "<p>Diverse, steerable super-resolution candidates for very low resolution faces, "
                      "licence plates and digits.</p>")
        head.setWordWrap(True)
        lay.addWidget(head)
        self.notice = QLabel(f"\u26a0 {core.LEAD_NOTICE} Every candidate is generated, not recovered: "
                             "it shows what the model finds plausible, not what the camera saw.")
        self.notice.setObjectName("about_notice")
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("background:#7a1f1f; color:white; font-weight:bold; padding:6px;")
        lay.addWidget(self.notice)

        self.bundles = QListWidget()
        self.bundles.setMinimumWidth(220)
        self.bundles.setWordWrap(True)
        self.bundles.setSpacing(3)
        self.card = QTextBrowser()
        self.card.setOpenExternalLinks(True)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.bundles)
        split.addWidget(self.card)
        split.setStretchFactor(1, 1)
        split.setSizes([260, 640])
        lay.addWidget(QLabel(f"Installed model bundles ({_shown(self.models_root)}):"))
        lay.addWidget(split, 1)
        self.missing = QLabel("\n".join(missing))
        self.missing.setWordWrap(True)
        self.missing.setStyleSheet("color:#b7791f;")
        self.missing.setVisible(bool(missing))
        lay.addWidget(self.missing)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        lay.addWidget(buttons)

        self.names = list_models(self.models_root)
        for name in self.names:
            folder = self.models_root / name
            has_card = (folder / CARD).is_file()
            it = QListWidgetItem(f"{name}\n{bundle_summary(folder)}" + ("" if has_card else "\nno card"))
            it.setData(NAME_ROLE, name)
            it.setToolTip(str(folder))
            self.bundles.addItem(it)
        self.bundles.currentItemChanged.connect(lambda cur, _prev: self.show_card(cur.data(NAME_ROLE)
                                                                                  if cur else None))
        if self.names:
            self.bundles.setCurrentRow(0)
        else:
            self.card.setMarkdown("No model bundles are installed: the app opens images but cannot "
                                  "generate candidates until bundles are placed in the models folder "
                                  "(see README).")

    def show_card(self, name: str | None) -> None:
        if name is None:
            self.card.clear()
            return
        text = read_card(self.models_root / name)
        if text is None:
            self.card.setMarkdown(f"# {name}\n\nno card: this bundle ships no `{CARD}`, so where its "
                                  "weights come from, what they were trained on and how they were "
                                  "evaluated is not documented. Treat its candidates with extra care.")
        else:
            self.card.setMarkdown(text)

    def card_text(self) -> str:
        return self.card.toPlainText()


def _shown(p: Path) -> str:
    from core.workbench.catalogue import display_path

    return display_path(p)
