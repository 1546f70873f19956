"""Dock sizes per domain: sensible defaults, and the analyst's own sizes remembered per domain.

Faces share the right column between the attribute sliders and the tabbed shortlist and searches;
plates and digits have no sliders, so their (empty) Attributes dock keeps a slim strip and the
shortlist and the searches take the column. Whatever the analyst makes of a domain's layout is
kept in the settings (``docks/<domain>``, the window's ``saveState``) and comes back with it.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QSettings, Qt
from PySide6.QtWidgets import QDockWidget, QMainWindow

#: Default heights (Attributes dock, the tabbed shortlist and searches) per domain; Qt scales them to
#: the column's height.
DEFAULT_HEIGHTS: dict[str, tuple[int, int]] = {"face": (360, 540), "plate": (80, 820), "digit": (80, 820)}
#: Default width of the right column.
DEFAULT_WIDTH = 420
KEY = "docks/{}"


class DockLayout(QObject):
    """Fits the docks to a domain on first use and remembers the analyst's layout per domain.

    Before the window is first shown its layout has no sizes yet (a state restored then comes out
    distorted), so the domain's layout is applied when the window shows.
    """

    def __init__(self, window: QMainWindow, settings: QSettings, upper: QDockWidget, lower: QDockWidget) -> None:
        super().__init__(window)
        self.window, self.settings = window, settings
        self.upper, self.lower = upper, lower
        self.domain: str | None = None
        self._shown = False
        window.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if obj is self.window and event.type() == QEvent.Type.Show and not self._shown:
            self._shown = True
            if self.domain is not None:
                self._apply(self.domain)
        return False

    def fit(self, domain: str) -> None:
        """The default sizes for ``domain``."""
        heights = DEFAULT_HEIGHTS.get(domain, DEFAULT_HEIGHTS["plate"])
        self.window.resizeDocks([self.upper, self.lower], list(heights), Qt.Orientation.Vertical)
        self.window.resizeDocks([self.lower], [DEFAULT_WIDTH], Qt.Orientation.Horizontal)

    def remember(self) -> None:
        """Keep the current layout as the current domain's."""
        if self.domain is not None and self._shown:
            self.settings.setValue(KEY.format(self.domain), self.window.saveState())

    def switch(self, domain: str) -> None:
        """Keep the layout of the domain left, then show ``domain``'s remembered layout (or its defaults)."""
        if domain == self.domain:
            return
        self.remember()
        self.domain = domain
        if self._shown:
            self._apply(domain)

    def _apply(self, domain: str) -> None:
        state = self.settings.value(KEY.format(domain))
        if state is None or not self.window.restoreState(state):
            self.fit(domain)
