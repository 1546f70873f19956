"""File > Open recent: the evidence files opened last, kept in QSettings (most recent first)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMenu

MAX_RECENT = 10


class RecentFiles:
    """The window's recent-files menu (a mixin of :class:`~varsr_gui.main_window.MainWindow`)."""

    def _make_recent_menu(self, file_menu: QMenu) -> None:
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self._fill_recent_menu()

    def recent_files(self) -> list[str]:
        """Most recent first, from QSettings (an INI file gives one entry back as a plain string)."""
        v = self.settings.value("recent_files", [])
        if v is None:
            return []
        items = [v] if isinstance(v, str) else list(v)
        return [str(x) for x in items if x][:MAX_RECENT]

    def add_recent(self, path: Path) -> None:
        p = str(path)
        self._set_recent([p, *(x for x in self.recent_files() if x != p)])

    def _set_recent(self, items: list[str]) -> None:
        self.settings.setValue("recent_files", items[:MAX_RECENT])
        self.settings.sync()
        self._fill_recent_menu()

    def clear_recent(self) -> None:
        self._set_recent([])

    def _fill_recent_menu(self) -> None:
        m = self.recent_menu
        m.clear()
        items = self.recent_files()
        for i, p in enumerate(items, start=1):
            a = m.addAction(f"&{i % 10} {Path(p).name}")
            a.setToolTip(p)
            a.setStatusTip(p)
            a.setData(p)
            a.triggered.connect(lambda _c=False, p=p: self.open_recent(p))
        if items:
            m.addSeparator()
        clear = m.addAction("&Clear the list")
        clear.setEnabled(bool(items))
        clear.triggered.connect(lambda _c=False: self.clear_recent())

    def open_recent(self, path: str) -> bool:
        if not Path(path).is_file():
            self._set_recent([x for x in self.recent_files() if x != path])
            self.show_message(f"{path} is no longer there (removed from the recent files).")
            return False
        return self.open_path(path)
