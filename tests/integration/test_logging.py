"""Each request leaves one JSON log line carrying its request id and commune."""

from __future__ import annotations

import io
import json

from perron.logging import configure_logging
from tests.conftest import ClientFactory, MakeCommune


async def test_access_log_lines_are_json_with_request_id_and_tenant(
    settings, make_commune: MakeCommune, client_for: ClientFactory
) -> None:
    await make_commune("hannut")
    stream = io.StringIO()
    configure_logging(settings.model_copy(update={"log_level": "INFO"}), stream=stream)
    try:
        response = await client_for("hannut.test").get("/")
        await client_for("unknown.test").get("/")
    finally:
        configure_logging(settings.model_copy(update={"log_level": "WARNING"}))
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["event"] == "http.request"]
    served, unknown = access[-2], access[-1]
    assert served["request_id"] == response.headers["x-request-id"]
    assert served["tenant"] == "hannut"
    assert served["status"] == 200
    assert served["host"] == "hannut.test"
    assert {"timestamp", "level", "duration_ms", "method", "path"} <= set(served)
    assert unknown["tenant"] is None
    assert unknown["status"] == 404
