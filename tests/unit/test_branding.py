"""Colours a commune picks must stay readable (WCAG 2.1 AA, 4.5:1 for text)."""

import io
from collections.abc import Iterator

import pytest
from PIL import Image

from perron.i18n import using_language
from perron.tenancy.branding import (
    ICON_SIZES,
    BrandingError,
    IconKind,
    check_home_sections,
    check_intro,
    contrast_ratio,
    monogram,
    normalize_colour,
    prepare_logo,
    render_icon,
    sniff_image,
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


@pytest.mark.parametrize("value", ["rgb(0, 0, 0)", "#12345g", "", "#1234567", "1f4e79", "#12", "red"])
def test_colours_that_are_not_colours_are_refused_naming_the_field(value: str) -> None:
    with pytest.raises(BrandingError) as caught:
        validate_palette({"accent_color": value})
    assert str(caught.value).startswith(f"accent_color: {value!r} is not a colour")
    assert caught.value.field == "palette"


def test_the_palette_refusal_names_every_failing_pair_with_its_ratio() -> None:
    with pytest.raises(BrandingError) as caught:
        validate_palette({"text_color": "#bbbbbb"})
    assert str(caught.value) == (
        "text_color #bbbbbb on background_color #ffffff (body text on the page background) "
        "has contrast 1.92:1, below the 4.5:1 WCAG AA needs"
    )


@pytest.fixture
def english() -> Iterator[None]:
    """Messages are translated: these tests read them in English."""
    with using_language("en"):
        yield


def test_refusals_speak_the_admins_language() -> None:
    with using_language("nl"), pytest.raises(BrandingError) as caught:
        prepare_logo(b"<svg onload='alert(1)'></svg>", "logo.svg")
    assert str(caught.value).startswith("SVG-logo's worden niet aanvaard")
    with using_language("fr"), pytest.raises(BrandingError) as caught:
        check_home_sections(["meteo"])
    assert str(caught.value).startswith("'meteo' : ce n'est pas une section de la page d'accueil")


def test_intro_texts_are_trimmed_and_checked(english: None) -> None:
    assert check_intro({"fr": "  Bienvenue\r\nà Hannut ", "nl": "   "}) == {"fr": "Bienvenue\nà Hannut"}
    with pytest.raises(BrandingError, match=r"'xx' is not a language Perron offers") as caught:
        check_intro({"xx": "Hello"})
    assert caught.value.field == "intro.xx"
    with pytest.raises(BrandingError, match=r"has 2001 characters; keep it under 2000\."):
        check_intro({"fr": "a" * 2001})
    with pytest.raises(BrandingError, match="control characters"):
        check_intro({"fr": "Bonjour\x00"})


def test_home_sections_are_known_keys_in_the_given_order(english: None) -> None:
    assert check_home_sections(["contact", "intro"]) == ["contact", "intro"]
    with pytest.raises(BrandingError) as caught:
        check_home_sections(["intro", "weather", "news"])
    assert str(caught.value) == (
        "'weather', 'news': not a home-page section; choose among intro, services, widgets, contact."
    )
    assert caught.value.field == "home_sections"
    with pytest.raises(BrandingError, match="'intro': listed twice"):
        check_home_sections(["intro", "services", "intro"])
    with pytest.raises(BrandingError, match="at least one section"):
        check_home_sections([])
    with pytest.raises(BrandingError, match="Give a list of sections"):
        check_home_sections("intro,services")


def _image(kind: str, size: tuple[int, int] = (300, 120), mode: str = "RGB") -> bytes:
    output = io.BytesIO()
    Image.new(mode, size, "#0b5e3c" if mode != "RGBA" else (11, 94, 60, 128)).save(output, kind)
    return output.getvalue()


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (_image("PNG"), "PNG"),
        (_image("JPEG"), "JPEG"),
        (_image("WEBP"), "WEBP"),
        (_image("GIF"), "GIF"),
        (_image("BMP"), "BMP"),
        (_image("TIFF"), "TIFF"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
        (b"\xef\xbb\xbf  <!-- made by hand -->\n<svg></svg>", "SVG"),
        ("<svg></svg>".encode("utf-16"), "SVG"),
        (b"%PDF-1.7 ...", "PDF"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "HEIC"),
        (b"hello, I am text", None),
        (b"<html><body>no vector here</body></html>", None),
    ],
)
def test_images_are_recognised_by_content(data: bytes, kind: str | None) -> None:
    assert sniff_image(data) == kind


def test_a_prepared_logo_keeps_its_shape_and_transparency() -> None:
    wide = prepare_logo(_image("PNG", (3000, 600), "RGBA"), "wide.png")
    assert (wide.width, wide.height, wide.media_type) == (1536, 307, "image/png")
    assert Image.open(io.BytesIO(wide.data)).mode == "RGBA"
    photo = prepare_logo(_image("JPEG", (800, 600)), "photo.jpg")
    assert (photo.width, photo.height, photo.media_type) == (683, 512, "image/jpeg")
    small = prepare_logo(_image("WEBP", (200, 100)), None)
    assert (small.width, small.height) == (200, 100)  # never enlarged


@pytest.mark.parametrize(
    ("size", "message"),
    [
        ((4001, 200), "The image is 4001×200 pixels; a logo may be at most 4000×4000 pixels"),
        ((300, 20), "The image is only 300×20 pixels; a logo needs at least 48 pixels"),
    ],
)
def test_logos_out_of_bounds_are_refused(english: None, size: tuple[int, int], message: str) -> None:
    with pytest.raises(BrandingError) as caught:
        prepare_logo(_image("PNG", size), "logo.png")
    assert str(caught.value).startswith(message)
    assert caught.value.field == "logo"


def test_icons_have_their_sizes_and_are_opaque_for_home_screens() -> None:
    palette = validate_palette({"primary_color": "#0b5e3c"})
    for kind, size in ICON_SIZES.items():
        data = render_icon(kind, palette, letter="H")
        image = Image.open(io.BytesIO(data))
        if kind is IconKind.FAVICON:
            assert image.format == "ICO"
            assert {(16, 16), (32, 32), (48, 48)} <= image.info["sizes"]
            continue
        assert image.format == "PNG"
        assert image.size == (size, size)
        assert image.mode == "RGB"
        assert image.getpixel((1, 1)) == (0x0B, 0x5E, 0x3C)  # the main colour, edge to edge
        # The initial is drawn in the text colour, in the middle.
        assert (255, 255, 255) in {colour for _, colour in image.getcolors(size * size)}


def test_a_white_logo_is_not_lost_on_a_white_background() -> None:
    palette = validate_palette({"primary_color": "#1d3f8f"})
    white = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    white.paste((255, 255, 255, 255), (50, 50, 150, 150))
    output = io.BytesIO()
    white.save(output, "PNG")
    icon = Image.open(io.BytesIO(render_icon(IconKind.ICON_192, palette, letter="A", logo=output.getvalue())))
    assert icon.getpixel((2, 2)) == (0x1D, 0x3F, 0x8F)  # drawn on the main colour instead
    assert icon.getpixel((96, 96)) == (255, 255, 255)


def test_the_initial_is_the_first_letter_or_digit() -> None:
    assert monogram("La Louvière") == "L"
    assert monogram("'s-Gravenbrakel") == "S"
    assert monogram("Écaussinnes") == "É"
    assert monogram("") == ""
