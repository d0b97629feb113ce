"""What a commune's site looks like, as data: colours, texts, home-page sections, logo, icons.

* Colours are validated for WCAG 2.1 AA contrast and served as CSS custom properties.
* The introduction text and the home page's sections are checked here.
* A logo is accepted only as PNG, JPEG or WebP, recognised by its content; it is decoded
  within strict limits, re-encoded (which drops every piece of metadata, such as a photo's
  GPS position) and scaled down. SVG is refused: it can carry scripts.
* App icons (home screen, browser tab) are drawn from the logo, or from the commune's
  initial on its main colour when it has none.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePath

from PIL import Image, ImageCms, ImageDraw, ImageFont, ImageOps, ImageStat

from perron.i18n import format_number, gettext
from perron.tenancy.models import DEFAULT_PALETTE, HOME_SECTIONS, LANGUAGES, FontChoice

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
    """Branding a commune cannot use; the message names the field or the failing pair, and
    ``field`` says which part of the branding it concerns."""

    def __init__(self, message: str, field: str = "palette") -> None:
        super().__init__(message)
        self.field = field


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


@dataclass(frozen=True, slots=True)
class PairContrast:
    """How readable one pair of a palette is: ``foreground`` on ``background`` (field names),
    their colours and the contrast ratio between them."""

    foreground: str
    background: str
    foreground_colour: str
    background_colour: str
    ratio: float

    @property
    def passes(self) -> bool:
        return self.ratio >= AA_TEXT

    @property
    def shown_ratio(self) -> float:
        """The ratio cut (never rounded up) to two decimals: 4.499 shows as 4.49, not 4.50."""
        return int(self.ratio * 100) / 100


def pair_contrasts(palette: Mapping[str, str]) -> list[PairContrast]:
    """The contrast of each pair a page shows, for a normalised palette."""
    return [
        PairContrast(
            foreground,
            background,
            palette[foreground],
            palette[background],
            contrast_ratio(palette[foreground], palette[background]),
        )
        for foreground, background, _seen_as in CONTRAST_PAIRS
    ]


def validate_palette(palette: Mapping[str, str]) -> dict[str, str]:
    """The palette normalised, or :class:`BrandingError` naming every failing pair."""
    unknown = set(palette) - set(DEFAULT_PALETTE)
    if unknown:
        raise BrandingError(f"unknown colour(s): {', '.join(sorted(unknown))}")
    merged = {**DEFAULT_PALETTE, **palette}
    normalised = {field: normalize_colour(field, value) for field, value in merged.items()}
    seen_as = {(foreground, background): words for foreground, background, words in CONTRAST_PAIRS}
    failures = [
        f"{pair.foreground} {pair.foreground_colour} on {pair.background} {pair.background_colour} "
        f"({seen_as[pair.foreground, pair.background]}) has contrast {pair.ratio:.2f}:1, "
        "below the 4.5:1 WCAG AA needs"
        for pair in pair_contrasts(normalised)
        if not pair.passes
    ]
    if failures:
        raise BrandingError("; ".join(failures))
    return normalised


def stylesheet(palette: Mapping[str, str], font: FontChoice, selector: str = ":root") -> str:
    """The commune's CSS custom properties; the theme's stylesheet uses only these. Another
    ``selector`` scopes them to part of a page (the branding editor's preview)."""
    properties = {
        "--perron-primary": palette["primary_color"],
        "--perron-on-primary": palette["primary_text_color"],
        "--perron-accent": palette["accent_color"],
        "--perron-background": palette["background_color"],
        "--perron-text": palette["text_color"],
        "--perron-font": FONT_STACKS[font],
    }
    body = "".join(f"  {name}: {value};\n" for name, value in properties.items())
    return f"{selector} {{\n{body}}}\n"


def fingerprint(css: str) -> str:
    return hashlib.sha256(css.encode()).hexdigest()[:16]


# Texts and home-page sections -----------------------------------------------------------

MAX_INTRO_LENGTH = 2000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_intro(value: object) -> dict[str, str]:
    """The home page's introduction per language, trimmed; empty texts are dropped."""
    if not isinstance(value, Mapping):
        raise BrandingError(gettext("Give a text per language."), "intro")
    texts: dict[str, str] = {}
    for language, text in value.items():
        if language not in LANGUAGES:
            raise BrandingError(
                gettext("'%(code)s' is not a language Perron offers (fr, nl, de, en).") % {"code": language},
                f"intro.{language}",
            )
        if not isinstance(text, str):
            raise BrandingError(gettext("The introduction must be text."), f"intro.{language}")
        cleaned = text.replace("\r\n", "\n").replace("\r", "\n").strip()
        if not cleaned:
            continue
        if len(cleaned) > MAX_INTRO_LENGTH:
            raise BrandingError(
                gettext("The introduction has %(count)s characters; keep it under %(limit)s.")
                % {"count": len(cleaned), "limit": MAX_INTRO_LENGTH},
                f"intro.{language}",
            )
        if _CONTROL.search(cleaned):
            raise BrandingError(
                gettext("The introduction contains invisible control characters."), f"intro.{language}"
            )
        texts[language] = cleaned
    return texts


MAX_TAGLINE_LENGTH = 120


def check_tagline(value: object) -> dict[str, str]:
    """The tagline under the commune's name, per language, on one line; empty ones dropped."""
    if not isinstance(value, Mapping):
        raise BrandingError(gettext("Give a text per language."), "tagline")
    texts: dict[str, str] = {}
    for language, text in value.items():
        if language not in LANGUAGES:
            raise BrandingError(
                gettext("'%(code)s' is not a language Perron offers (fr, nl, de, en).") % {"code": language},
                f"tagline.{language}",
            )
        if not isinstance(text, str):
            raise BrandingError(gettext("The tagline must be text."), f"tagline.{language}")
        cleaned = text.strip()
        if not cleaned:
            continue
        if len(cleaned) > MAX_TAGLINE_LENGTH:
            raise BrandingError(
                gettext("The tagline has %(count)s characters; keep it to %(limit)s at most.")
                % {"count": len(cleaned), "limit": MAX_TAGLINE_LENGTH},
                f"tagline.{language}",
            )
        if _CONTROL.search(cleaned) or "\n" in cleaned or "\r" in cleaned:
            raise BrandingError(
                gettext("The tagline fits on one line, without invisible control characters."),
                f"tagline.{language}",
            )
        texts[language] = cleaned
    return texts


def check_home_sections(value: object) -> list[str]:
    """The home page's sections, in the order given; each known, none twice, at least one."""
    field = "home_sections"
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise BrandingError(
            gettext("Give a list of sections, such as %(example)s.") % {"example": ", ".join(HOME_SECTIONS)},
            field,
        )
    sections = list(value)
    choices = ", ".join(HOME_SECTIONS)
    unknown = [section for section in sections if section not in HOME_SECTIONS]
    if unknown:
        names = ", ".join(repr(section) for section in unknown)
        raise BrandingError(
            gettext("%(names)s: not a home-page section; choose among %(choices)s.")
            % {"names": names, "choices": choices},
            field,
        )
    repeated = sorted({section for section in sections if sections.count(section) > 1})
    if repeated:
        names = ", ".join(repr(section) for section in repeated)
        raise BrandingError(gettext("%(names)s: listed twice.") % {"names": names}, field)
    if not sections:
        raise BrandingError(
            gettext("The home page needs at least one section; choose among %(choices)s.")
            % {"choices": choices},
            field,
        )
    return sections


# Logos ------------------------------------------------------------------------------------

MAX_LOGO_BYTES = 2 * 1024 * 1024
MAX_LOGO_SIDE = 4000
MIN_LOGO_SIDE = 48
LOGO_BOX = (1536, 512)
"""The stored logo fits in this box (wide logos stay wide); it is never enlarged."""

LOGO_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
"""What a logo may be, recognised by content (never by the file's name)."""


def _refusal(kind: str) -> str:
    """Why a kind of file is not accepted as a logo, and what to do instead."""
    if kind == "SVG":
        return gettext(
            "SVG logos are not accepted: an SVG file can carry scripts that would run on the commune's "
            "site. Export the logo as a PNG (with a transparent background if it has one) and upload that."
        )
    if kind == "GIF":
        return gettext("GIF images are not accepted; save the logo as a PNG and upload that.")
    if kind == "HEIC":
        return gettext("HEIC photos (the iPhone's format) are not accepted; export the image as JPEG or PNG.")
    if kind == "PDF":
        return gettext("A PDF is not an image; export the logo as a PNG and upload that.")
    return gettext("%(format)s images are not accepted; upload a PNG, JPEG or WebP image.") % {"format": kind}


_NAMED_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WebP",
    ".gif": "GIF",
    ".svg": "SVG",
}


@dataclass(frozen=True, slots=True)
class PreparedLogo:
    """A logo ready to store: re-encoded, without metadata, at most :data:`LOGO_BOX`."""

    data: bytes
    media_type: str
    width: int
    height: int


def _label(filename: str | None) -> str:
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    return repr(name[:80]) if name else gettext("The file")


def check_logo_size(size: int, filename: str | None = None) -> None:
    """Refuse a file too large to be a logo before reading it."""
    if size > MAX_LOGO_BYTES:
        raise BrandingError(
            gettext(
                "%(file)s is %(size)s MB; a logo may be at most %(limit)s MB "
                "(a PNG about 1000 pixels wide is plenty)."
            )
            % {
                "file": _label(filename),
                "size": format_number(size / (1024 * 1024), 1),
                "limit": MAX_LOGO_BYTES // (1024 * 1024),
            },
            "logo",
        )


def sniff_image(data: bytes) -> str | None:
    """What kind of file this is, from its first bytes (``PNG``, ``SVG``...), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:5] == b"%PDF-":
        return "PDF"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if data[:2] == b"BM" and len(data) > 18 and struct.unpack("<I", data[14:18])[0] in (12, 40, 56, 108, 124):
        return "BMP"
    if data[:4] == b"\x00\x00\x01\x00" and len(data) > 6:
        return "ICO"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            return "HEIC"
        if brand in (b"avif", b"avis"):
            return "AVIF"
    if _looks_like_svg(data):
        return "SVG"
    return None


def _looks_like_svg(data: bytes) -> bool:
    head = data[:4096]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head.decode("utf-16", errors="ignore")
    else:
        text = head.decode("utf-8", errors="ignore")
    text = text.lstrip("\ufeff \t\r\n").lower()
    return text.startswith("<") and "<svg" in text


def _check_dimensions(width: int, height: int) -> None:
    if width > MAX_LOGO_SIDE or height > MAX_LOGO_SIDE:
        raise BrandingError(
            gettext(
                "The image is %(width)s×%(height)s pixels; a logo may be at most %(limit)s×%(limit)s "
                "pixels: scale it down and upload it again."
            )
            % {"width": width, "height": height, "limit": MAX_LOGO_SIDE},
            "logo",
        )
    if width < MIN_LOGO_SIDE or height < MIN_LOGO_SIDE:
        raise BrandingError(
            gettext(
                "The image is only %(width)s×%(height)s pixels; a logo needs at least %(minimum)s pixels "
                "in each direction to look sharp."
            )
            % {"width": width, "height": height, "minimum": MIN_LOGO_SIDE},
            "logo",
        )


def _too_many_pixels(data: bytes, kind: str) -> str:
    if kind == "PNG" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return gettext(
            "The image declares %(width)s×%(height)s pixels; "
            "a logo may be at most %(limit)s×%(limit)s pixels."
        ) % {"width": width, "height": height, "limit": MAX_LOGO_SIDE}
    return gettext("The image declares more pixels than a logo may have (at most %(limit)s×%(limit)s).") % {
        "limit": MAX_LOGO_SIDE
    }


def _lossless_webp(data: bytes) -> bool:
    """Whether a WebP file holds a lossless image (drawn artwork rather than a photo)."""
    offset = 12
    while offset + 8 <= min(len(data), 1 << 16):
        fourcc, size = data[offset : offset + 4], struct.unpack("<I", data[offset + 4 : offset + 8])[0]
        if fourcc in (b"VP8L", b"VP8 "):
            return fourcc == b"VP8L"
        offset += 8 + size + (size & 1)
    return False


def _fit(width: int, height: int, box: tuple[int, int]) -> tuple[int, int]:
    """The largest size of the same shape within ``box``, never larger than the original."""
    scale = min(1.0, box[0] / width, box[1] / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _to_srgb(image: Image.Image) -> Image.Image:
    """RGB or RGBA in sRGB, whatever the source's mode and colour profile."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        image = image.convert("I").point(lambda value: value * (1 / 257)).convert("L")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    target = "RGBA" if has_alpha else "RGB"
    profile = image.info.get("icc_profile")
    if profile and image.mode in ("RGB", "RGBA", "CMYK", "L"):
        try:
            converted = ImageCms.profileToProfile(
                image,
                ImageCms.ImageCmsProfile(io.BytesIO(profile)),
                ImageCms.createProfile("sRGB"),
                outputMode=target if image.mode != "L" or target == "RGB" else "RGB",
            )
            if converted is not None:
                image = converted
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # a broken profile: the colours stay as they are, the logo is still usable
    if image.mode != target:
        image = image.convert(target)
    if target == "RGBA" and image.getchannel("A").getextrema()[0] == 255:
        image = image.convert("RGB")  # declared transparency that no pixel uses
    return image


def prepare_logo(data: bytes, filename: str | None = None) -> PreparedLogo:
    """Check an uploaded logo and re-encode it, or raise :class:`BrandingError` saying what
    is wrong with it. ``filename`` only serves the messages: the content decides."""
    label = _label(filename)
    check_logo_size(len(data), filename)
    if not data:
        raise BrandingError(gettext("%(file)s is empty.") % {"file": label}, "logo")
    kind = sniff_image(data)
    if kind is None:
        claimed = _NAMED_FORMATS.get(PurePath((filename or "").replace("\\", "/")).suffix.lower())
        if claimed:
            raise BrandingError(
                gettext(
                    "%(file)s is named like a %(format)s image but does not contain one; "
                    "upload a PNG, JPEG or WebP image."
                )
                % {"file": label, "format": claimed},
                "logo",
            )
        raise BrandingError(
            gettext("%(file)s is not an image Perron can read; upload a PNG, JPEG or WebP image.")
            % {"file": label},
            "logo",
        )
    if kind not in LOGO_FORMATS:
        raise BrandingError(_refusal(kind), "logo")
    try:
        with Image.open(io.BytesIO(data), formats=[kind]) as source:
            _check_dimensions(*source.size)
            if kind == "JPEG":
                # Decode no larger than needed (JPEG can scale while decoding): less work.
                # The photo may still turn a quarter (EXIF orientation): allow for both ways.
                upright = _fit(*source.size, LOGO_BOX)
                turned = _fit(source.size[1], source.size[0], LOGO_BOX)
                source.draft(None, (max(upright[0], turned[1]), max(upright[1], turned[0])))
            source.load()
            image = ImageOps.exif_transpose(source) or source
            image = _to_srgb(image)
    except BrandingError:
        raise
    except Image.DecompressionBombError:
        raise BrandingError(_too_many_pixels(data, kind), "logo") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error):
        raise BrandingError(
            gettext(
                "%(file)s is a damaged or incomplete %(format)s image (the upload may have been cut off); "
                "export it again and upload the new file."
            )
            % {"file": label, "format": kind if kind != "WEBP" else "WebP"},
            "logo",
        ) from None
    size = _fit(*image.size, LOGO_BOX)
    if size != image.size:
        image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    # A new image from the pixels alone: nothing of the original's metadata (EXIF, GPS
    # position, camera, comments, colour profile) can come along.
    clean = Image.frombytes(image.mode, image.size, image.tobytes())
    output = io.BytesIO()
    if clean.mode == "RGBA" or kind == "PNG" or (kind == "WEBP" and _lossless_webp(data)):
        clean.save(output, "PNG", optimize=True)
        media_type = "image/png"
    else:
        clean.save(output, "JPEG", quality=88, optimize=True, progressive=True)
        media_type = "image/jpeg"
    return PreparedLogo(output.getvalue(), media_type, clean.width, clean.height)


# App icons --------------------------------------------------------------------------------


class IconKind(StrEnum):
    """The icons a commune's site offers: home-screen icons (Android, any size up to 512),
    the iPhone's home-screen icon, and the browser tab's favicon."""

    ICON_192 = "icon-192"
    ICON_512 = "icon-512"
    APPLE_TOUCH = "apple-touch-icon"
    FAVICON = "favicon"


ICON_SIZES = {IconKind.ICON_192: 192, IconKind.ICON_512: 512, IconKind.APPLE_TOUCH: 180, IconKind.FAVICON: 32}
FAVICON_SIZES = (16, 32, 48)
ICON_STYLE = "1"
"""Part of every icon's version: change it when the drawing changes, so browsers refetch."""


def icon_media_type(kind: IconKind) -> str:
    return "image/x-icon" if kind is IconKind.FAVICON else "image/png"


def monogram(name: str) -> str:
    """The letter that stands for a commune on its icons when it has no logo."""
    return next((character.upper() for character in name if character.isalnum()), "")


def icon_version(palette: Mapping[str, str], letter: str, logo_version: str | None) -> str:
    """Changes whenever any icon would look different."""
    colours = "|".join(palette[key] for key in ("primary_color", "primary_text_color", "background_color"))
    return fingerprint(f"{ICON_STYLE}|{logo_version or ''}|{colours}|{letter}")


def render_icon(
    kind: IconKind, palette: Mapping[str, str], *, letter: str, logo: bytes | None = None
) -> bytes:
    """One icon, as PNG (or ICO for the favicon): the logo on the page's background colour,
    or the commune's initial on its main colour. Home-screen icons keep their content in
    the central circle that every phone's mask leaves visible ("maskable")."""
    picture = _open_logo(logo) if logo is not None else None
    if kind is IconKind.FAVICON:
        frames = [_draw_icon(size, kind, palette, letter, picture) for size in FAVICON_SIZES]
        output = io.BytesIO()
        largest = frames[-1]
        largest.save(
            output,
            "ICO",
            sizes=[(size, size) for size in FAVICON_SIZES],
            append_images=frames[:-1],
        )
        return output.getvalue()
    output = io.BytesIO()
    _draw_icon(ICON_SIZES[kind], kind, palette, letter, picture).save(output, "PNG", optimize=True)
    return output.getvalue()


def _open_logo(data: bytes) -> Image.Image | None:
    try:
        with Image.open(io.BytesIO(data), formats=list(LOGO_FORMATS)) as image:
            image.load()
            return image.convert("RGBA")
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        return None  # the stored logo is unreadable: the initial stands in


def _hex(rgb: Iterable[float]) -> str:
    return "#" + "".join(f"{max(0, min(255, round(channel))):02x}" for channel in rgb)


def _backdrop(logo: Image.Image, palette: Mapping[str, str]) -> str:
    """The page's background colour, unless the logo (a white one on a transparent
    background, say) would vanish on it and the main colour shows it better."""
    background = palette["background_color"]
    alpha = logo.getchannel("A")
    if alpha.getextrema()[0] == 255:
        return background
    mask = alpha.point(lambda value: 255 if value >= 128 else 0)
    if mask.getbbox() is None:
        return background
    # The logo's average visible colour.
    mean = _hex(ImageStat.Stat(logo.convert("RGB"), mask).mean)
    if contrast_ratio(mean, background) >= 2.0:
        return background
    primary = palette["primary_color"]
    return primary if contrast_ratio(mean, primary) > contrast_ratio(mean, background) else background


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _draw_icon(
    size: int, kind: IconKind, palette: Mapping[str, str], letter: str, logo: Image.Image | None
) -> Image.Image:
    background = _backdrop(logo, palette) if logo is not None else palette["primary_color"]
    # Shapes and letters are drawn larger, then scaled down: smooth edges at every size.
    scale = max(1, min(8, 1024 // size))
    large = size * scale
    canvas = Image.new("RGBA", (large, large), (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    if kind is IconKind.FAVICON:
        # A rounded square: reads as a tab icon on light and dark browser themes alike.
        draw.rounded_rectangle((0, 0, large - 1, large - 1), radius=round(large * 0.2), fill=background)
    else:
        draw.rectangle((0, 0, large, large), fill=background)  # full bleed: phones cut their own shape
    if logo is None:
        share = {IconKind.FAVICON: 0.66, IconKind.APPLE_TOUCH: 0.5}.get(kind, 0.42)
        _draw_letter(draw, letter, large, share, palette["primary_text_color"])
    icon = canvas.resize((size, size), Image.Resampling.LANCZOS) if scale > 1 else canvas
    if logo is not None:
        if kind in (IconKind.ICON_192, IconKind.ICON_512):
            # Maskable: the logo's corners stay inside the circle of radius 40% that every
            # mask keeps (a little margin inside it).
            diagonal = (logo.width**2 + logo.height**2) ** 0.5
            factor = 0.76 * size / diagonal
            box = (max(1, round(logo.width * factor)), max(1, round(logo.height * factor)))
        else:
            share = 0.9 if kind is IconKind.FAVICON else 0.78
            box = _fit(logo.width, logo.height, (round(size * share), round(size * share)))
            box = _grow_to(logo.size, box)
        placed = logo.resize(box, Image.Resampling.LANCZOS, reducing_gap=3.0)
        icon.alpha_composite(placed, ((size - box[0]) // 2, (size - box[1]) // 2))
    if kind is not IconKind.FAVICON:
        opaque = Image.new("RGB", icon.size, _rgb(background))
        opaque.paste(icon, mask=icon.getchannel("A"))
        return opaque  # home-screen icons must be opaque (iOS shows transparency as black)
    return icon


def _grow_to(original: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """:func:`_fit` never enlarges; an icon may (a small logo on a big icon)."""
    width, height = original
    scale = min(box[0] / width, box[1] / height)
    if scale <= 1:
        return box
    return max(1, round(width * scale)), max(1, round(height * scale))


def _draw_letter(draw: ImageDraw.ImageDraw, letter: str, size: int, share: float, colour: str) -> None:
    """The initial, centred on its own outline (not on the font's line box), as tall as
    ``share`` of the icon."""
    if not letter:
        return
    target = size * share
    font = ImageFont.load_default(size=max(8, round(target / 0.72)))
    if not isinstance(font, ImageFont.FreeTypeFont):
        # Without FreeType there is no scalable font: a plain ring stands for the commune.
        inset = size * (1 - share) / 2
        draw.ellipse((inset, inset, size - inset, size - inset), outline=colour, width=max(1, size // 16))
        return
    left, top, right, bottom = font.getbbox(letter)
    if bottom - top <= 0:
        return
    font = font.font_variant(size=max(8, round(font.size * target / (bottom - top))))
    stroke = max(0, round(font.size * 0.03))
    left, top, right, bottom = draw.textbbox((0, 0), letter, font=font, stroke_width=stroke)
    position = ((size - (right - left)) / 2 - left, (size - (bottom - top)) / 2 - top)
    draw.text(position, letter, font=font, fill=colour, stroke_width=stroke, stroke_fill=colour)
