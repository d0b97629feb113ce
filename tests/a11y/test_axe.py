"""Every page of the demo communes passes axe-core's WCAG 2.0/2.1 A and AA rules in a real
browser, fits a 360px-wide phone screen, and keeps working without JavaScript.

The crawl starts at each demo commune's home page and follows every link to the same site,
breadth first (never logout, language switches, static files or other sites), in each of the
commune's languages, once as an anonymous visitor and once as a logged-in staff
administrator, so the staff pages and the pages of every module switched on are covered.
Each page is checked at a desktop width and at 360px: axe-core's serious and critical
violations, horizontal overflow, Content-Security-Policy refusals (an inline style or script
that the browser silently dropped) and links that lead nowhere all fail the test, listed
page by page.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.a11y.conftest import AXE, DemoCommune

pytestmark = pytest.mark.slow

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = ("serious", "critical")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}
MAX_PAGES = 80
"""Per crawl (one commune, language and visitor): more means a link multiplies pages."""
NOT_PAGES = (
    "/static/",
    "/media/",
    "/icons/",
    "/logout",
    "/branding.css",
    "/favicon.ico",
    "/apple-touch-icon.png",
    "/manifest.webmanifest",
    "/logo",
)
PARALLEL_CRAWLS = 3

RUN_AXE = """async (tags) => {
  const results = await axe.run(document, {
    runOnly: {type: "tag", values: tags},
    resultTypes: ["violations"],
  });
  return results.violations.map((violation) => ({
    id: violation.id,
    impact: violation.impact,
    help: violation.help,
    targets: violation.nodes.map((node) => node.target.join(" ")).slice(0, 5),
  }));
}"""

OVERFLOW = """() => {
  const width = window.innerWidth;
  const scroll = document.documentElement.scrollWidth;
  const wide = [];
  if (scroll > width) {
    for (const element of document.querySelectorAll("body *")) {
      const box = element.getBoundingClientRect();
      if (box.width > 0 && box.right > width + 1) {
        const classes = typeof element.className === "string" && element.className.trim()
          ? "." + element.className.trim().split(/\\s+/).join(".") : "";
        wide.push(element.tagName.toLowerCase() + (element.id ? "#" + element.id : "") + classes);
      }
    }
  }
  return {scroll, width, wide: wide.slice(0, 5)};
}"""


@dataclass
class Crawl:
    commune: str
    language: str
    visitor: str
    pages: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def report(self, path: str, problem: str) -> None:
        self.problems.append(f"{self.commune} [{self.language}, {self.visitor}] {path}: {problem}")


def _same_site_page(url: str, origin: str) -> str | None:
    """The path and query to visit for a link, or None when it is not a page of this site."""
    parts = urlsplit(url)
    if f"{parts.scheme}://{parts.netloc}" != origin:
        return None
    if parts.path.startswith(NOT_PAGES) or "lang=" in parts.query:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _page_key(path: str) -> str:
    """Links that show the same page: the login page is the same whatever page comes next,
    and one street (news item, neighbourhood...) stands for the others: the same route with
    another id is the same template filled with other data."""
    parts = urlsplit(path)
    route = "/".join("{id}" if _ID.match(segment) else segment for segment in parts.path.split("/"))
    query = "&".join(
        pair for pair in parts.query.split("&") if pair and not pair.startswith(("next=", "before="))
    )
    return route + (f"?{query}" if query else "")


async def _check_page(
    page: Any, crawl: Crawl, origin: str, path: str, found_on: str, csp_refusals: list[str]
) -> list[str]:
    """Check one page; return the same-site links it offers."""
    csp_refusals.clear()
    await page.set_viewport_size(DESKTOP)
    response = await page.goto(origin + path, wait_until="load")
    status = response.status if response is not None else 0
    content_type = response.headers.get("content-type", "") if response is not None else ""
    if status >= 400:
        crawl.report(path, f"answers {status}, yet {found_on} links to it")
    if "text/html" not in content_type:
        return []
    for width, viewport in (("desktop", DESKTOP), ("360px", PHONE)):
        await page.set_viewport_size(viewport)
        for violation in await page.evaluate(RUN_AXE, WCAG_TAGS):
            if violation["impact"] in BLOCKING:
                crawl.report(
                    path,
                    f"axe {violation['id']} ({violation['impact']}, {width}): {violation['help']} "
                    f"at {', '.join(violation['targets'])}",
                )
    overflow = await page.evaluate(OVERFLOW)
    if overflow["scroll"] > overflow["width"]:
        crawl.report(
            path,
            f"wider than a 360px screen ({overflow['scroll']}px), because of {', '.join(overflow['wide'])}",
        )
    for refusal in csp_refusals:
        crawl.report(path, f"the browser refused something under the Content-Security-Policy: {refusal}")
    # Downloads (a[download]) are files, not pages: their own tests check them.
    links = await page.eval_on_selector_all(
        "a[href]:not([download])", "links => links.map((link) => link.href)"
    )
    return [found for found in (_same_site_page(link, origin) for link in links) if found]


async def _crawl(browser: Any, port: int, commune: DemoCommune, language: str, staff: bool) -> Crawl:
    crawl = Crawl(commune.slug, language, "staff admin" if staff else "visitor")
    origin = f"http://{commune.host}:{port}"
    cookies = [{"name": "perron_session", "value": commune.staff_token, "url": origin + "/"}] if staff else []
    return await _walk(browser, crawl, origin, language, cookies, ["/"])


async def _walk(
    browser: Any, crawl: Crawl, origin: str, language: str, cookies: list[dict[str, str]], start: list[str]
) -> Crawl:
    """Check every page reachable by links from ``start``, breadth first."""
    context = await browser.new_context(viewport=DESKTOP, locale=language)
    await context.add_init_script(path=str(AXE))
    await context.add_cookies([{"name": "perron_lang", "value": language, "url": origin + "/"}, *cookies])
    page = await context.new_page()
    csp_refusals: list[str] = []
    page.on(
        "console",
        lambda message: (
            csp_refusals.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    queue: deque[tuple[str, str]] = deque((path, "") for path in start)
    seen = {_page_key(path) for path in start}
    try:
        while queue:
            path, found_on = queue.popleft()
            if len(crawl.pages) >= MAX_PAGES:
                crawl.report(path, f"the crawl stopped after {MAX_PAGES} pages: do links multiply pages?")
                break
            crawl.pages.append(path)
            for link in await _check_page(page, crawl, origin, path, found_on, csp_refusals):
                if _page_key(link) not in seen:
                    seen.add(_page_key(link))
                    queue.append((link, path))
    finally:
        await context.close()
    return crawl


async def test_every_page_passes_axe_fits_a_phone_and_has_no_broken_link(
    demo_communes: list[DemoCommune], live_server: int, browser: Any
) -> None:
    limit = asyncio.Semaphore(PARALLEL_CRAWLS)

    async def crawl(commune: DemoCommune, language: str, staff: bool) -> Crawl:
        async with limit:
            return await _crawl(browser, live_server, commune, language, staff)

    crawls = await asyncio.gather(
        *(
            crawl(commune, language, staff)
            for commune in demo_communes
            for language in commune.languages
            for staff in (False, True)
        )
    )

    assert {commune.slug for commune in demo_communes} >= {"andenne", "hannut", "la-louviere"}
    problems = [problem for crawl in crawls for problem in crawl.problems]
    assert problems == [], "\n" + "\n".join(problems)
    for done in crawls:
        # The crawl really walked the site: the pages every commune has were reached by links.
        expected = {"/", "/accessibility", "/privacy"} | (
            {"/admin"} if done.visitor == "staff admin" else set()
        )
        assert expected <= set(done.pages), (done.commune, done.language, done.visitor, done.pages)
    by_commune = {commune.slug: commune for commune in demo_communes}
    for done in crawls:
        # Every module switched on shows up in the navigation and its pages were checked.
        for module in by_commune[done.commune].enabled_modules:
            assert any(page.startswith(f"/{module}") for page in done.pages), (done.commune, module)
    print(
        f"\naxe-core checked {sum(len(done.pages) for done in crawls)} pages in {len(crawls)} crawls: "
        + ", ".join(f"{done.commune}/{done.language}/{done.visitor}: {len(done.pages)}" for done in crawls)
    )


LOGIN_PAGES = {
    "/login?next=//elsewhere.example": 400,  # a refused login: a link that would leave the site
    "/login/level?level=3&next=/": 403,  # e-mail login where itsme is needed
    "/login": 503,  # login switched off (the suite runs without Keycloak here)
}


async def test_the_login_pages_pass_axe_and_fit_a_phone(
    demo_communes: list[DemoCommune], live_server: int, browser: Any
) -> None:
    """Pages of the login that no link of the site leads to: a refusal, the request for a
    stronger login, login unavailable. Each in the commune's languages."""
    problems: list[str] = []
    for commune in demo_communes:
        for language in commune.languages:
            crawl = Crawl(commune.slug, language, "visitor")
            context = await browser.new_context(viewport=DESKTOP, locale=language)
            await context.add_init_script(path=str(AXE))
            origin = f"http://{commune.host}:{live_server}"
            await context.add_cookies([{"name": "perron_lang", "value": language, "url": origin + "/"}])
            page = await context.new_page()
            for path in LOGIN_PAGES:
                await _check_page(page, crawl, origin, path, "", [])
                assert await page.title(), path
            await context.close()
            # Each answers with its status (which the crawl notes); any other finding counts.
            expected = {f"{path}: answers {status}, yet  links to it" for path, status in LOGIN_PAGES.items()}
            noted = {problem.split("] ", 1)[1] for problem in crawl.problems}
            assert expected <= noted, (commune.slug, language, crawl.problems)
            problems += [problem for problem in crawl.problems if problem.split("] ", 1)[1] not in expected]
    assert problems == [], "\n" + "\n".join(problems)


async def test_without_javascript_the_menu_opens_and_its_links_work(
    demo_communes: list[DemoCommune], live_server: int, browser: Any
) -> None:
    hannut = next(commune for commune in demo_communes if commune.slug == "hannut")
    origin = f"http://{hannut.host}:{live_server}"
    context = await browser.new_context(java_script_enabled=False, viewport=PHONE, locale="fr")
    try:
        page = await context.new_page()
        await page.goto(origin + "/")
        menu = page.locator("nav.site-nav details")
        links = menu.locator("a")
        # On a phone the menu is closed: its links are hidden until the visitor opens it.
        assert await menu.is_visible()
        assert not await links.first.is_visible()
        await menu.locator("summary").click()
        assert await links.first.is_visible()
        assert await links.count() == 1 + len(hannut.enabled_modules)
        await links.last.click()
        await page.wait_for_load_state()
        target = "/" if not hannut.enabled_modules else f"/{hannut.enabled_modules[-1]}"
        assert urlsplit(page.url).path.startswith(target)
        # Wide screens show the same links as a bar, without opening anything.
        await page.set_viewport_size(DESKTOP)
        await page.goto(origin + "/accessibility")
        bar = page.locator("nav.site-nav .site-nav__bar a")
        assert await bar.count() == 1 + len(hannut.enabled_modules)
        for index in range(await bar.count()):
            assert await bar.nth(index).is_visible()
        assert not await menu.is_visible()
        # The footer's links and the language switcher are plain links as well.
        await page.get_by_role("link", name="Nederlands").click()
        await page.wait_for_load_state()
        assert await page.locator("html").get_attribute("lang") == "nl"
        assert urlsplit(page.url).path == "/accessibility"
    finally:
        await context.close()


async def test_the_check_catches_what_it_looks_for(browser: Any) -> None:
    """The same checks on a page made to fail: axe-core is loaded and its findings are kept,
    overflow is measured, so a clean crawl means clean pages."""
    context = await browser.new_context(viewport=PHONE)
    await context.add_init_script(path=str(AXE))
    try:
        page = await context.new_page()
        await page.set_content(
            '<!doctype html><html lang="fr"><head><title>Essai</title></head><body><main>'
            '<img src="/photo.jpg"><a href="/x"></a><table><tr><td>'
            + "x" * 200
            + "</td></tr></table></main></body></html>"
        )
        found = {violation["id"]: violation for violation in await page.evaluate(RUN_AXE, WCAG_TAGS)}
        assert found["image-alt"]["impact"] in BLOCKING
        assert found["link-name"]["impact"] in BLOCKING
        overflow = await page.evaluate(OVERFLOW)
        assert overflow["scroll"] > overflow["width"] == PHONE["width"]
        assert "table" in overflow["wide"]
    finally:
        await context.close()


async def _console_data(database: Any) -> tuple[str, list[str]]:
    """An operator's console session, and pages no link of the overview leads to by itself:
    every step of a wizard under way, a finished onboarding, a CSV import's report."""
    from perron.audit import SYSTEM, acting_as
    from perron.console import bulk, onboarding
    from perron.console.auth import open_console_session
    from perron.console.models import Onboarding, OnboardingStatus
    from perron.db.scope import platform_scope
    from perron.identity.models import PlatformRole
    from perron.tenancy.actions import get_intercommunale
    from tests.conftest import CONSOLE_HOST

    with platform_scope("test: console pages"), acting_as(SYSTEM):
        async with database.transaction() as session:
            session.add(
                PlatformRole(role="operator", email="olga@perron.test", subject="olga", display_name="Olga")
            )
            token = open_console_session(
                session, email="olga@perron.test", subject="olga", display_name="Olga"
            )
            body = await get_intercommunale(session, "bep")
            draft = await onboarding.new_draft(session, body, "olga@perron.test")
            draft.spec = draft.spec | {
                "slug": "gesves",
                "names": {"fr": "Gesves"},
                "languages": ["fr"],
                "nis_code": "92054",
                "domains": ["gesves.localhost"],
                "branding": {"palette": {}, "font": "system", "tagline": {}},
                "modules": {},
                "admins": [{"email": "g@gesves.example", "name": "Gaëlle Gesves", "language": "fr"}],
            }
            draft.step = len(onboarding.STEPS)
            done = Onboarding(
                intercommunale_id=body.id,
                status=OnboardingStatus.DONE,
                step=len(onboarding.STEPS),
                spec=dict(draft.spec) | {"slug": "ohey", "names": {"fr": "Ohey"}},
                created_by="olga@perron.test",
            )
            session.add(done)
            report = await bulk.import_file(
                session,
                body=body,
                data=b"name;nis;domain;languages;admin_email\nAssesse;92006;assesse.localhost;fr;a@assesse.example\n"
                b"Bad;1;bad;xx;nope\n",
                filename="communes.csv",
                created_by="olga@perron.test",
                console_host=CONSOLE_HOST,
            )
            await session.flush()
    start = ["/", *(f"/onboardings/{draft.id}/step/{step}" for step in onboarding.STEPS)]
    return token, [*start, f"/onboardings/{done.id}", f"/imports/{report.id}", "/imports/new"]


async def test_every_console_page_passes_axe_and_fits_a_phone(
    demo_communes: list[DemoCommune], live_server: int, browser: Any, database: Any
) -> None:
    """The console as an operator sees it, in each of its languages: every page the overview
    leads to, the wizard's steps, a provisioning's progress, a CSV import's report."""
    from tests.conftest import CONSOLE_HOST

    token, start = await _console_data(database)
    origin = f"http://{CONSOLE_HOST}:{live_server}"
    limit = asyncio.Semaphore(PARALLEL_CRAWLS)

    async def crawl(language: str) -> Crawl:
        async with limit:
            cookies = [{"name": "perron_console", "value": token, "url": origin + "/"}]
            return await _walk(
                browser, Crawl("console", language, "operator"), origin, language, cookies, start
            )

    crawls = await asyncio.gather(*(crawl(language) for language in ("fr", "nl", "de", "en")))
    problems = [problem for done in crawls for problem in done.problems]
    assert problems == [], "\n" + "\n".join(problems)
    for done in crawls:
        reached = {_page_key(page) for page in done.pages}
        expected = {
            "/communes",
            "/communes/andenne",
            "/intercommunales",
            "/intercommunales/bep",
            "/intercommunales/bep/modules",
            "/intercommunales/bep/modules/news",
            "/onboardings",
            "/jobs",
            "/operators",
            "/onboardings/{id}/step/branding",
            "/imports/{id}",
        }
        assert expected <= reached, (done.language, sorted(expected - reached))
