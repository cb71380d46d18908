"""Where settings come from: defaults, then the YAML file, then `FOREBAY_*` variables,
then flags, merged and validated into `Settings`.

Nested keys in variables are joined with a double underscore, as in
`FOREBAY_ADMIN__TOKEN` or `FOREBAY_LIMITS__MAX_BODY`; values are read as YAML scalars,
so `true`, `8` and `[a.yaml, b.json]` mean what they look like.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from forebay.errors import ConfigError
from forebay.settings import Settings

ENV_PREFIX = "FOREBAY_"


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == "FOREBAY_CONFIG":
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        try:
            value = yaml.safe_load(raw) if raw else raw
        except yaml.YAMLError:
            value = raw
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config file must be a mapping of settings")
    return data


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid settings"]
    for err in error.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def load_settings(
    config: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Settings from the file, the environment and command-line overrides, validated."""
    environ = os.environ if environ is None else environ
    config = config or environ.get("FOREBAY_CONFIG")
    data: dict[str, Any] = {}
    source = "settings"
    if config:
        path = Path(config)
        data = _read_file(path)
        data["base_dir"] = str(path.parent)
        source = str(path)
    data = _merge(data, env_overrides(environ))
    data = _merge(data, {k: v for k, v in (overrides or {}).items() if v not in (None, (), [])})
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_describe(e, source)) from e
