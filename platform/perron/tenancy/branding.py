"""A commune's colours: validated for WCAG 2.1 AA contrast, served as CSS custom properties."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from perron.tenancy.models import DEFAULT_PALETTE, FontChoice

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
_SHORT_HEX = re.compile(r"^#[0-9a-fA-F]{3}$")

AA_TEXT = 4.5
"""WCAG 2.1 AA minimum contrast for normal text (success criterion 1.4.3)."""

# Pairs shown together on every page: (foreground, background, what a person sees).
CONTRAST_PAIRS = (
    ("text_color", "background_color", "body text on the page background"),
    ("primary_text_color", "primary_color", "header text on the main colour"),
    ("accent_color", "background_color", "links and buttons on the page background"),
)

FONT_STACKS = {
    FontChoice.SYSTEM: 'system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif',
    FontChoice.HUMANIST: (
        '"Seravek", "Gill Sans Nova", Ubuntu, Calibri, "DejaVu Sans", source-sans-pro, sans-serif'
    ),
    FontChoice.SERIF: '"Iowan Old Style", "Palatino Linotype", "URW Palladio L", P052, Georgia, serif',
    FontChoice.ROUNDED: (
        'ui-rounded, "Hiragino Maru Gothic ProN", Quicksand, Comfortaa, "Arial Rounded MT", sans-serif'
    ),
}


class BrandingError(ValueError):
    """A palette a commune cannot use; the message names the field or the failing pair."""


def normalize_colour(field: str, value: str) -> str:
    text = value.strip()
    if _SHORT_HEX.match(text):
        text = "#" + "".join(character * 2 for character in text[1:])
    if not _HEX.match(text):
        raise BrandingError(f"{field}: {value!r} is not a colour; write it as #rrggbb, such as #1f4e79")
    return text.lower()


def _channel(value: int) -> float:
    srgb = value / 255
    return srgb / 12.92 if srgb <= 0.04045 else ((srgb + 0.055) / 1.055) ** 2.4


def relative_luminance(colour: str) -> float:
    red, green, blue = (int(colour[index : index + 2], 16) for index in (1, 3, 5))
    return 0.2126 * _channel(red) + 0.7152 * _channel(green) + 0.0722 * _channel(blue)


def contrast_ratio(first: str, second: str) -> float:
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def validate_palette(palette: Mapping[str, str]) -> dict[str, str]:
    """The palette normalised, or :class:`BrandingError` naming every failing pair."""
    unknown = set(palette) - set(DEFAULT_PALETTE)
    if unknown:
        raise BrandingError(f"unknown colour(s): {', '.join(sorted(unknown))}")
    merged = {**DEFAULT_PALETTE, **palette}
    normalised = {field: normalize_colour(field, value) for field, value in merged.items()}
    failures = []
    for foreground, background, seen_as in CONTRAST_PAIRS:
        ratio = contrast_ratio(normalised[foreground], normalised[background])
        if ratio < AA_TEXT:
            failures.append(
                f"{foreground} {normalised[foreground]} on {background} {normalised[background]} "
                f"({seen_as}) has contrast {ratio:.2f}:1, below the 4.5:1 WCAG AA needs"
            )
    if failures:
        raise BrandingError("; ".join(failures))
    return normalised


def stylesheet(palette: Mapping[str, str], font: FontChoice) -> str:
    """The commune's CSS custom properties; the theme's stylesheet uses only these."""
    properties = {
        "--perron-primary": palette["primary_color"],
        "--perron-on-primary": palette["primary_text_color"],
        "--perron-accent": palette["accent_color"],
        "--perron-background": palette["background_color"],
        "--perron-text": palette["text_color"],
        "--perron-font": FONT_STACKS[font],
    }
    body = "".join(f"  {name}: {value};\n" for name, value in properties.items())
    return f":root {{\n{body}}}\n"


def fingerprint(css: str) -> str:
    return hashlib.sha256(css.encode()).hexdigest()[:16]
