"""What a commune (or its intercommunale) can set for its news."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class NewsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    show_on_home: bool = Field(default=True, title="Show the latest news on the home page")
    items_on_home: int = Field(default=3, ge=1, le=10, title="How many news on the home page")
    page_size: int = Field(default=10, ge=5, le=50, title="News per page")
    announce_by_default: bool = Field(
        default=False,
        title="Announce new publications to residents by default",
        description="Residents get a notification, by the channel each of them prefers.",
    )
