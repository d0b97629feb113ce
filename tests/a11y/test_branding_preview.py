"""The branding editor's live preview in a real browser: with JavaScript the panel and the
contrast check follow the inputs (under the Content-Security-Policy, which forbids inline
styles); without it, "Preview" sends the form and the panel shows the proposal. Either way
nothing is saved."""

from __future__ import annotations

from typing import Any

import pytest

from tests.a11y.conftest import DemoCommune
from tests.a11y.test_axe import DESKTOP

pytestmark = pytest.mark.slow

PANEL_BACKGROUND = (
    "() => getComputedStyle(document.querySelector('.branding-preview__header')).backgroundColor"
)


async def _admin_page(
    browser: Any, commune: DemoCommune, port: int, *, javascript: bool
) -> tuple[Any, Any, list[str]]:
    context = await browser.new_context(viewport=DESKTOP, locale="fr", java_script_enabled=javascript)
    origin = f"http://{commune.host}:{port}"
    await context.add_cookies(
        [
            {"name": "perron_lang", "value": "fr", "url": origin + "/"},
            {"name": "perron_session", "value": commune.staff_token, "url": origin + "/"},
        ]
    )
    page = await context.new_page()
    refusals: list[str] = []
    page.on(
        "console",
        lambda message: refusals.append(message.text) if "Content Security Policy" in message.text else None,
    )
    await page.goto(origin + "/admin/branding")
    return context, page, refusals


async def test_with_javascript_the_preview_follows_the_inputs(
    demo_communes: list[DemoCommune], live_server: int, browser: Any
) -> None:
    hannut = next(commune for commune in demo_communes if commune.slug == "hannut")
    context, page, refusals = await _admin_page(browser, hannut, live_server, javascript=True)
    try:
        saved_css = await page.evaluate("() => fetch('/branding.css').then((r) => r.text())")
        await page.fill("#field-primary_color-code", "#7a1f5c")
        assert await page.evaluate(PANEL_BACKGROUND) == "rgb(122, 31, 92)"
        assert await page.input_value("#field-primary_color-picker") == "#7a1f5c"
        # A pair falling below 4.5:1 says so at once, in words.
        await page.fill("#field-primary_text_color-code", "#8a2f6c")
        item = page.locator("#field-contrast-primary_text_color")
        assert await item.locator("[data-when=fail]").first.is_visible()
        assert not await item.locator("[data-when=pass]").is_visible()
        assert "trop faible" in await page.inner_text("#contrast-summary")
        await page.fill("#field-primary_text_color-code", "#ffffff")
        assert await item.locator("[data-when=pass]").is_visible()
        await page.check("#font-serif")
        font = await page.evaluate(
            "() => getComputedStyle(document.querySelector('.branding-preview__page')).fontFamily"
        )
        assert "Georgia" in font
        # Nothing saved: the site's stylesheet is as it was.
        assert await page.evaluate("() => fetch('/branding.css').then((r) => r.text())") == saved_css
        assert refusals == []
    finally:
        await context.close()


async def test_without_javascript_the_preview_button_shows_the_proposal(
    demo_communes: list[DemoCommune], live_server: int, browser: Any
) -> None:
    hannut = next(commune for commune in demo_communes if commune.slug == "hannut")
    context, page, refusals = await _admin_page(browser, hannut, live_server, javascript=False)
    try:
        await page.fill("#field-primary_color-code", "#003366")
        await page.click("button[name=intent][value=preview]")
        await page.wait_for_load_state()
        assert "Ceci est un aperçu" in await page.inner_text("main")
        assert page.url.endswith("/admin/branding#branding-preview")
        header = page.locator(".branding-preview__header")
        colour = await header.evaluate("(element) => getComputedStyle(element).backgroundColor")
        assert colour == "rgb(0, 51, 102)"
        site = await page.locator(".site-header").evaluate(
            "(element) => getComputedStyle(element).backgroundColor"
        )
        assert site == "rgb(11, 94, 60)"  # the page itself keeps the saved colours
        assert refusals == []
    finally:
        await context.close()
