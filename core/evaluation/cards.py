"""Model cards: replace one generated section, keep the rest (the history) as it is."""

from __future__ import annotations


def replace_section(card: str, heading: str, text: str) -> str:
    """``card`` with its ``heading`` section (up to the next ``## ``) replaced by ``text``, which starts with
    ``heading``; appended when the card has no such section."""
    start = card.find(heading)
    if start < 0:
        return card.rstrip() + "\n\n" + text
    end = card.find("\n## ", start + len(heading))
    return card[:start] + text + ("" if end < 0 else "\n" + card[end + 1:])
