"""Model cards with a history section and a closing section, for the card-writing tools' tests."""

from __future__ import annotations

from pathlib import Path


def write_cards(models: Path, names: tuple[str, ...], history: str) -> None:
    """``models/<name>/card.md`` for each name: a title, ``history`` (an earlier section, to be kept)
    and a *Known failure modes* section after it."""
    for name in names:
        (models / name).mkdir(parents=True)
        (models / name / "card.md").write_text(f"# Model card: `{name}`\n\n{history}\n\n"
                                               "## Known failure modes\n- x\n", encoding="utf-8")
