"""A commune's data from the console: export it, download the archive, delete the commune
(after the export, naming it), import the archive back (operators), and all of it out of
reach of another intercommunale."""

from __future__ import annotations

import io
import re
import zipfile

from perron.testing.harness import Harness
from tests.console.conftest import Bodies, console, submit, text


async def test_export_download_delete_and_import_back(perron: Harness, bodies: Bodies) -> None:
    await perron.enable(bodies.ciney, "news", demo=True)
    client = console(perron, bodies.bep_admin)
    page = "/communes/ciney"
    queued = await submit(perron, client, page, "/communes/ciney/exports", {})
    assert queued.status_code == 303 and "export_queued" in queued.headers["location"]
    await perron.run_jobs()
    shown = (await client.get(page)).text
    link = re.search(r'href="(/communes/ciney/exports/[0-9a-f-]+)" download', shown)
    assert link, shown
    download = await client.get(link.group(1))
    assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        names = archive.namelist()
    assert "manifest.json" in names and "tables/news_articles.json" in names

    # Another intercommunale: no export, no download, no deletion.
    other = console(perron, bodies.idelux_admin)
    assert (await other.get(link.group(1))).status_code == 404
    assert (await submit(perron, other, "/communes/arlon", "/communes/ciney/exports", {})).status_code == 404
    assert (
        await submit(perron, other, "/communes/arlon", "/communes/ciney/delete", {"confirmation": "Ciney"})
    ).status_code == 404

    wrong = await submit(perron, client, page, "/communes/ciney/delete", {"confirmation": "ciney please"})
    assert wrong.status_code == 400 and (await perron.client("ciney.test").get("/")).status_code == 200
    deleted = await submit(perron, client, page, "/communes/ciney/delete", {"confirmation": "Ciney"})
    assert deleted.status_code == 303, text(deleted)
    assert (await perron.client("ciney.test").get("/")).status_code == 404
    assert (await client.get(page)).status_code == 404
    assert "ciney is deleted" in text(await client.get(deleted.headers["location"]))

    # The operator imports the archive: checked first, imported on confirmation.
    operator = console(perron, bodies.operator)
    assert (await operator.get("/archives")).status_code == 200
    assert (await client.get("/archives")).status_code == 403
    token = await perron.form_token(operator, "/archives")
    broken = await operator.post(
        "/archives",
        data={"_csrf_token": token},
        files={"archive": ("x.zip", b"not a zip", "application/zip")},
    )
    assert broken.status_code == 400 and "cannot be imported" in text(broken)
    checked = await operator.post(
        "/archives",
        data={"_csrf_token": token},
        files={"archive": ("ciney.zip", download.content, "application/zip")},
    )
    assert checked.status_code == 200 and "The archive can be imported" in text(checked), text(checked)
    action = re.search(r'action="(/archives/upload-[0-9a-f]+\.zip/import)"', checked.text)
    assert action
    imported = await operator.post(action.group(1), data={"_csrf_token": token})
    assert imported.status_code == 303 and imported.headers["location"] == "/communes/ciney?done=imported"
    assert (await perron.client("ciney.test").get("/news")).status_code == 200
    # A second import of the same archive is refused: the commune exists.
    again = await operator.post(
        "/archives",
        data={"_csrf_token": token},
        files={"archive": ("ciney.zip", download.content, "application/zip")},
    )
    assert again.status_code == 400 and "ciney" in text(again)
