"""File > Recent cases: the case folders opened or created last (a mixin of
:class:`~varsr_gui.case_actions.CaseActions`, which provides ``settings``, ``shell`` and ``open_case``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMenu

MAX_RECENT_CASES = 8


class RecentCases:
    """The recent-cases list, kept in the settings, and its menu."""

    settings: QSettings
    shell: Any

    def open_case(self, folder: str | Path, recover: bool | None = None) -> Any:
        """Provided by the class this mixes into."""
        raise NotImplementedError

    # -- recent cases --------------------------------------------------------------------------------
    def recent_cases(self) -> list[str]:
        """Case folders opened or created last, most recent first."""
        v = self.settings.value("recent_cases", [])
        items = [v] if isinstance(v, str) else list(v or [])
        return [str(x) for x in items if x][:MAX_RECENT_CASES]

    def _add_recent_case(self, folder: Path) -> None:
        p = str(Path(folder).resolve())
        self.settings.setValue("recent_cases", [p, *(x for x in self.recent_cases() if x != p)][:MAX_RECENT_CASES])
        self.settings.sync()

    def make_recent_menu(self, file_menu: QMenu) -> None:
        """File > Recent cases (filled each time it opens)."""
        self.recent_menu = file_menu.addMenu("Recent c&ases")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self._fill_recent_menu()

    def _fill_recent_menu(self) -> None:
        m = self.recent_menu
        m.clear()
        items = self.recent_cases()
        for p in items:
            a = m.addAction(Path(p).name)
            a.setToolTip(p)
            a.setStatusTip(p)
            a.setData(p)
            a.triggered.connect(lambda _c=False, p=p: self.open_recent_case(p))
        if not items:
            m.addAction("(none yet)").setEnabled(False)

    def open_recent_case(self, folder: str) -> Any:
        if not Path(folder).is_dir():
            self.settings.setValue("recent_cases", [x for x in self.recent_cases() if x != folder])
            self.shell.show_message(f"{folder} is no longer there (removed from the recent cases).")
            return None
        return self.open_case(folder)
