"""Building small projects on disk for tests of the engine (memory endpoints, fake transforms)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from esb.exceptions import ConfigError
from esb.message import Message
from esb.project import Project


class FakeTransform:
    """A transform made of a Python function over the body."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def apply(self, message: Message) -> Message:
        """Return the message with ``fn`` applied to its body."""
        return message.replace(body=self.fn(message.body))


class FakeTransforms:
    """A stand-in TransformRegistry."""

    def __init__(self, transforms: dict[str, Callable[[Any], Any]]) -> None:
        self.transforms = {k: FakeTransform(v) for k, v in transforms.items()}

    def get(self, name: str) -> FakeTransform:
        """Return the transform ``name``."""
        try:
            return self.transforms[name]
        except KeyError:
            raise ConfigError(f"unknown transform {name!r}") from None

    def names(self) -> list[str]:
        """Return every name."""
        return sorted(self.transforms)

    def load_all(self) -> list[str]:
        """Nothing to compile."""
        return []


def make_project(
    tmp_path: Path,
    routes: list[dict[str, Any]],
    endpoints: list[str],
    transforms: dict[str, Callable[[Any], Any]] | None = None,
) -> Project:
    """Write a project with memory endpoints and ``routes``; return it loaded, with fake transforms."""
    systems: dict[str, Any] = {}
    for name in endpoints:
        system, endpoint = name.split(".", 1)
        systems.setdefault(system, {"name": system, "endpoints": {}})["endpoints"][endpoint] = {
            "adapter": "memory"
        }
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "systems.yaml").write_text(yaml.safe_dump({"systems": systems}))
    (tmp_path / "config" / "settings.yaml").write_text(
        yaml.safe_dump({"data_dir": str(tmp_path / "var"), "runtime": {"poll_timeout": 0.02}})
    )
    (tmp_path / "routes.yaml").write_text(yaml.safe_dump({"routes": routes}, sort_keys=False))
    project = Project.load(tmp_path, environ={})
    project.__dict__["transforms"] = FakeTransforms(transforms or {})
    return project
