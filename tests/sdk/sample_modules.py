"""Manifests the SDK tests load through real entry points (see test_registry.py)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from perron.sdk import ModuleManifest


class SampleSettings(BaseModel):
    threshold: int = Field(default=10, ge=1, le=100)
    label: str = Field(default="hello", max_length=40)


future = ModuleManifest(name="future", version="2.0.0", platform=">=9.0", titles={"fr": "Futur"})
untitled = ModuleManifest(name="untitled", version="1.0", platform=">=0.1", titles={"nl": "Zonder Frans"})
not_a_manifest = {"name": "dict"}
good = ModuleManifest(
    name="sample", version="1.2.3", platform=">=0.1,<1", titles={"fr": "Exemple"}, settings=SampleSettings
)


class NoDefaults(BaseModel):
    needed: int


needs_config = ModuleManifest(
    name="needsconfig", version="1.0", platform=">=0.1", titles={"fr": "X"}, settings=NoDefaults
)

impostor = ModuleManifest(name="sample", version="0.1", platform=">=0.1", titles={"fr": "Imposteur"})
