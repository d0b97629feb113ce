"""The unit tests read the platform's rules as the command line shows them: in English."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from perron.i18n import using_language


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    with using_language("en"):
        yield
