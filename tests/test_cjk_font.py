"""The font the book serves for its Chinese text (_ext/cjk_font.py): it has a glyph
for every CJK character in the book's sources, and its licence travels with it."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "_ext"))

import cjk_font  # noqa: E402


def test_the_served_font_covers_every_cjk_character_in_the_book():
    used = cjk_font.source_characters()
    assert len(used) > 50  # the glossary alone names some sixty terms in Chinese
    missing = used - cjk_font.covered(ROOT / cjk_font.FONT)
    assert not missing, (
        f"{cjk_font.FONT} lacks {''.join(sorted(missing))}: make it again "
        "(python _ext/cjk_font.py, see its docstring)"
    )


def test_the_font_is_small_and_its_licence_is_beside_it():
    font = ROOT / cjk_font.FONT
    assert font.stat().st_size < 200_000
    licence = (font.parent / "LICENSE").read_text(encoding="utf-8")
    assert "SIL OPEN FONT LICENSE Version 1.1" in licence


def test_characters_finds_chinese_and_full_width_punctuation_only():
    assert cjk_font.characters(["样本Loss加权（见下）, ok"]) == set("样本加权（见下）")
