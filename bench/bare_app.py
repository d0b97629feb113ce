"""The baseline of bench/http_bench.py: a bare Litestar endpoint, served like Perron.

python bench/bare_app.py PORT
"""

from __future__ import annotations

import sys

import uvicorn
from litestar import Litestar, MediaType, get

from perron.cli.serve import uvicorn_options
from perron.config import load_settings


@get("/", media_type=MediaType.TEXT)
async def hello() -> str:
    return "ok"


app = Litestar(route_handlers=[hello], openapi_config=None, logging_config=None)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), **uvicorn_options(load_settings()))
