"""What a commune (or its intercommunale) can set for its news."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from perron.sdk import lazy


class NewsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    show_on_home: bool = Field(default=True, title=lazy("Show the latest news on the home page"))
    items_on_home: int = Field(default=3, ge=1, le=10, title=lazy("How many news on the home page"))
    page_size: int = Field(default=10, ge=5, le=50, title=lazy("News per page"))
    announce_by_default: bool = Field(
        default=False,
        title=lazy("Announce new publications to residents by default"),
        description=lazy("Residents get a notification, by the channel each of them prefers."),
    )
