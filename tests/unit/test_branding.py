"""Colours a commune picks must stay readable (WCAG 2.1 AA, 4.5:1 for text)."""

import pytest

from perron.tenancy.branding import (
    BrandingError,
    contrast_ratio,
    normalize_colour,
    stylesheet,
    validate_palette,
)
from perron.tenancy.models import FontChoice


def test_contrast_ratio_matches_the_wcag_definition() -> None:
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#ffffff", "#ffffff") == pytest.approx(1.0)
    assert contrast_ratio("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)  # the classic AA grey


def test_a_palette_failing_aa_is_refused_naming_the_pair() -> None:
    with pytest.raises(BrandingError) as caught:
        validate_palette({"primary_color": "#ffdd00", "accent_color": "#aaaaaa"})
    message = str(caught.value)
    assert "primary_text_color #ffffff on primary_color #ffdd00" in message
    assert "accent_color #aaaaaa on background_color #ffffff" in message
    assert "text_color" not in message.split("accent_color")[0].replace("primary_text_color", "")


def test_colours_are_normalised_and_bad_ones_named() -> None:
    assert normalize_colour("primary_color", "#ABC") == "#aabbcc"
    with pytest.raises(BrandingError, match="primary_color: 'blue' is not a colour"):
        validate_palette({"primary_color": "blue"})
    with pytest.raises(BrandingError, match="unknown colour"):
        validate_palette({"link_colour": "#000000"})


def test_stylesheet_only_sets_custom_properties() -> None:
    css = stylesheet(validate_palette({"primary_color": "#0b5e3c"}), FontChoice.SERIF)
    assert css.startswith(":root {")
    assert "--perron-primary: #0b5e3c;" in css
    assert "Georgia" in css
