"""Onboarding communes from a CSV file: the good lines go through, each bad one is reported
with its line number and reason, and the whole file is refused only when it cannot be read."""

from __future__ import annotations

import csv
import html
import io

import pytest
from sqlalchemy import func, select

from perron.console.models import BulkOnboarding, Onboarding, OnboardingStatus
from perron.db.scope import platform_scope
from perron.identity.models import Account, AccountKind
from perron.tenancy.models import Commune, CommuneStatus, ModuleActivation
from perron.testing.harness import Harness
from tests.console.conftest import Bodies, console, text

pytestmark = pytest.mark.slow

HEADER = "name;nis;domain;languages;admin_email\n"


def good_lines(count: int, start: int = 0) -> list[str]:
    return [
        f"Commune {n:02d};{81000 + n};c{n:02d}.example.be;fr nl;admin{n}@c{n:02d}.example.be"
        for n in range(start, start + count)
    ]


async def upload(perron: Harness, client, data: bytes, *, body: str = "bep", name: str = "communes.csv"):
    token = await perron.form_token(client, "/imports/new")
    return await client.post(
        "/imports",
        data={"_csrf_token": token, "intercommunale": body},
        files={"file": (name, data, "text/csv")},
    )


async def test_fifty_communes_from_a_file_with_broken_lines_in_it(perron: Harness, bodies: Bodies) -> None:
    client = console(perron, bodies.bep_admin)
    # Module defaults of the intercommunale apply to every line.
    saved = await perron.post_form(
        client, "/intercommunales/bep/modules", "/intercommunales/bep/modules", {"module.news": "on"}
    )
    assert saved.status_code == 303
    lines = good_lines(50)
    broken = [
        "Commune dupliquée;81003;dup.example.be;fr;x@dup.example.be",  # NIS of line 5
        "Autre;81099;c07.example.be;fr;x@autre.example.be",  # domain of line 9
        "Ciney bis;91030;ciney.test;fr;x@ciney.example.be",  # domain taken by Ciney
        "Sans langue;81100;sl.example.be;xx;x@sl.example.be",
        "Mauvais NIS;8110;mn.example.be;fr;x@mn.example.be",
        "Sans e-mail;81101;se.example.be;fr;",
        "Adresse;81102;http://ad.example.be;fr;x@ad.example.be",
        ";81103;vide.example.be;fr;x@vide.example.be",
        "Trop;81104;trop.example.be;fr;x@trop.example.be;extra",
    ]
    data = (HEADER + "\n".join(lines + broken) + "\n").encode()
    response = await upload(perron, client, data)
    assert response.status_code == 303, text(response)
    report_url = response.headers["location"]
    report = text(await client.get(report_url))
    assert "50 accepted, 9 refused" in report, report
    expected = {
        52: "NIS code 81003",
        53: "c07.example.be",
        54: "ciney.test",
        55: "xx",
        56: "NIS code",
        57: "administrator's e-mail",
        58: "without “https://”",
        59: "name",
        60: "more cells",
    }
    page = (await client.get(report_url)).text
    for line, reason in expected.items():
        row = html.unescape(page.split(f'<th scope="row">{line}</th>')[1].split("</tr>")[0])
        assert "Refused" in row and reason.lower() in row.lower(), (line, row)

    await perron.run_jobs(rounds=200)
    report = text(await client.get(report_url))
    assert "On board: 50; being provisioned: 0; failed: 0" in report, report
    with platform_scope("test: look"):
        async with perron.database.session() as session:
            communes = list(await session.scalars(select(Commune).where(Commune.slug.like("commune-%"))))
            assert len(communes) == 50 and all(c.status is CommuneStatus.ACTIVE for c in communes)
            assert {c.languages[0] for c in communes} == {"fr"} and communes[0].languages == ["fr", "nl"]
            news = await session.scalar(
                select(func.count()).select_from(ModuleActivation).where(ModuleActivation.module == "news")
            )
            assert news == 50
            admins = list(await session.scalars(select(Account).where(Account.kind == AccountKind.STAFF)))
            assert {a.email for a in admins} >= {f"admin{n}@c{n:02d}.example.be" for n in range(50)}
            assert next(a for a in admins if a.email == "admin7@c07.example.be").display_name == "Admin7"
            assert (
                await session.scalar(
                    select(func.count())
                    .select_from(Onboarding)
                    .where(Onboarding.status == OnboardingStatus.DONE)
                )
                == 50
            )
    # The report as a spreadsheet, one row per line.
    download = await client.get(report_url + "/report.csv")
    assert download.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(download.text), delimiter=";"))
    assert len(rows) == 1 + 59 and rows[1][4] == "on board" and "NIS code 81003" in rows[51][4]
    # The site of one of them answers on its address.
    assert (await perron.client("c42.example.be").get("/")).status_code == 200


async def test_a_file_that_cannot_be_read_is_refused_whole_and_changes_nothing(
    perron: Harness, bodies: Bodies
) -> None:
    client = console(perron, bodies.bep_admin)
    for data, reason in (
        (b"", "empty"),
        (b"name;nis\nCiney;91030\n", "missing: domain, languages, admin_email"),
        (HEADER.encode(), "no commune"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not a CSV"),
        (HEADER.encode() + b"x" * (1024 * 1024), "larger than 1 MB"),
    ):
        response = await upload(perron, client, data)
        assert response.status_code in (400, 413), (reason, response.status_code)
        if response.status_code == 400:
            assert reason in text(response), (reason, text(response))
    with platform_scope("test: look"):
        async with perron.database.session() as session:
            assert await session.scalar(select(func.count()).select_from(BulkOnboarding)) == 0
            assert await session.scalar(select(func.count()).select_from(Onboarding)) == 0


async def test_spreadsheet_habits_are_understood(perron: Harness, bodies: Bodies) -> None:
    """Windows-1252 from Excel, commas, French column names, a header in any case."""
    client = console(perron, bodies.bep_admin)
    data = (
        "Nom,Code NIS,Domaine,Langues,E-mail\nSchaerbeek-lès-Liège,81200,sll.example.be,fr,a@sll.example.be\n"
    )
    response = await upload(perron, client, data.encode("cp1252"))
    assert response.status_code == 303, text(response)
    await perron.run_jobs()
    with platform_scope("test: look"):
        async with perron.database.session() as session:
            commune = await session.scalar(select(Commune).where(Commune.nis_code == "81200"))
            assert commune is not None and commune.names == {"fr": "Schaerbeek-lès-Liège"}
            assert commune.slug == "schaerbeek-les-liege"


async def test_another_intercommunale_sees_neither_the_report_nor_can_import_for_bep(
    perron: Harness, bodies: Bodies
) -> None:
    bep = console(perron, bodies.bep_admin)
    response = await upload(perron, bep, (HEADER + good_lines(1)[0] + "\n").encode())
    report_url = response.headers["location"]
    idelux = console(perron, bodies.idelux_admin)
    for path in (report_url, report_url + "/lines", report_url + "/report.csv"):
        assert (await idelux.get(path)).status_code == 404, path
    refused = await upload(perron, idelux, (HEADER + good_lines(1, 10)[0] + "\n").encode(), body="bep")
    assert refused.status_code == 404
    await perron.run_jobs()
