"""Model cards: replace one generated section, keep the rest (the history) as it is."""

from __future__ import annotations

import argparse
from pathlib import Path


def replace_section(card: str, heading: str, text: str) -> str:
    """``card`` with its ``heading`` section (up to the next ``## ``) replaced by ``text``, which starts with
    ``heading``; appended when the card has no such section."""
    start = card.find(heading)
    if start < 0:
        return card.rstrip() + "\n\n" + text
    end = card.find("\n## ", start + len(heading))
    return card[:start] + text + ("" if end < 0 else "\n" + card[end + 1:])


def card_tool_parser(doc: str, inputs: str, inputs_help: str, models: Path) -> argparse.ArgumentParser:
    """The arguments every card-writing tool takes: its input JSON files, ``--note`` and ``--models``."""
    p = argparse.ArgumentParser(description=doc.split("\n")[0])
    p.add_argument(inputs, nargs="+", type=Path, help=inputs_help)
    p.add_argument("--note", default="", help="a paragraph to put under the heading")
    p.add_argument("--models", type=Path, default=models)
    return p
