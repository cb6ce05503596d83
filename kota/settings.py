"""The one settings tree: a TOML file, then `KOTA_…` environment overrides, validated once.

Each component receives only its own section. Nothing here runs at import time: the
environment is read when `load_settings` is called.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from controlroom.settings import BrokerSettings, ControlRoomSettings, DatabaseSettings
from edge.settings import EdgeSettings

ENV_PREFIX = "KOTA_"
ENV_SEPARATOR = "__"


class SiteSettings(BaseModel):
    """The city this installation serves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    city: str = Field("Kota Contoh", max_length=80, description="City name shown to users.")
    timezone: str = Field("Asia/Jakarta", description="IANA zone: Asia/Jakarta (WIB), "
                          "Asia/Makassar (WITA) or Asia/Jayapura (WIT).")
    data_dir: Path | None = Field(None, description="Where local state lives; default: "
                                  "$XDG_DATA_HOME/kotapintar or ~/.local/share/kotapintar.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    def resolved_data_dir(self, environ: Mapping[str, str] | None = None) -> Path:
        if self.data_dir is not None:
            return self.data_dir.expanduser()
        env = os.environ if environ is None else environ
        base = env.get("XDG_DATA_HOME") or str(Path("~/.local/share").expanduser())
        return Path(base) / "kotapintar"


class Settings(BaseModel):
    """The whole tree, as in `kota.example.toml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    site: SiteSettings = Field(default_factory=SiteSettings)
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    controlroom: ControlRoomSettings = Field(default_factory=ControlRoomSettings)
    edge: EdgeSettings = Field(default_factory=EdgeSettings)


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` lists (key path, reason)."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {path}: {reason}" for path, reason in problems)
        super().__init__(f"invalid configuration ({source}):\n{lines}")


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """KOTA_DATABASE__URL=… becomes {"database": {"url": "…"}}; JSON values are parsed."""
    tree: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or ENV_SEPARATOR not in name:
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX):].split(ENV_SEPARATOR)]
        value: Any = raw
        if raw[:1] in "[{":
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                value = raw
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(name, [(".".join(path), "conflicts with another override")])
        node[path[-1]] = value
    return tree


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def validate_tree(raw: Mapping[str, Any], source: str) -> Settings:
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = [
            (".".join(str(p) for p in err["loc"]) or "(root)",
             "unknown key" if err["type"] == "extra_forbidden" else err["msg"])
            for err in exc.errors(include_url=False)
        ]
        raise ConfigError(source, problems) from exc


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read FILE (if given), apply KOTA_* overrides, validate; raise ConfigError naming the key."""
    env = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(source, [("(file)", "no such file")]) from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(source, [("(file)", f"not valid TOML: {exc}")]) from exc
    overrides = _env_overrides(env)
    if overrides:
        source += " + KOTA_* environment"
        raw = _merge(raw, overrides)
    return validate_tree(raw, source)
