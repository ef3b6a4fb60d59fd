"""Loading: which file to read, reading it, then checking and resolving it in one pass."""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from syncagent.config.display import show_path
from syncagent.config.files import Files
from syncagent.config.messages import combine, describe, key_path
from syncagent.config.models import Config, LoggingConfig, SafetyConfig
from syncagent.config.resolve import resolve_graph, resolve_scim, resolve_source, resolve_state
from syncagent.config.schema import SECTIONS, ConfigFile
from syncagent.errors import ConfigError

# Named after the package: to an operator, the configuration is one part of the program.
log = logging.getLogger(__package__)

DEFAULT_CONFIG_PATH = Path("/etc/syncagent/syncagent.toml")
CONFIG_ENV = "SYNCAGENT_CONFIG"  # the name of an environment variable


def validate_file(data: Mapping[str, Any]) -> ConfigFile:
    # Missing sections are empty tables, so their required keys are reported by name.
    payload = {name: {} for name in SECTIONS} | dict(data)
    try:
        return ConfigFile.model_validate(payload)
    except ValidationError as exc:
        problems = [ConfigError(key_path(e["loc"]), describe(e)) for e in exc.errors()]
        # Not chained: pydantic's own text repeats the input values.
        raise combine(problems) from None


_T = TypeVar("_T")


def _collect(problems: list[ConfigError], resolve: Callable[[], _T]) -> _T | None:
    try:
        return resolve()
    except ConfigError as exc:
        problems.append(exc)
        return None


def parse_config(
    data: Mapping[str, Any],
    *,
    base_dir: Path,
    env: Mapping[str, str] = os.environ,
    source: Path | None = None,
) -> Config:
    """Check and resolve a configuration given as TOML-shaped data.

    Relative file names are looked up in $CREDENTIALS_DIRECTORY (when set and the file is
    there), then in `base_dir`. Raises ConfigError naming every section that is wrong.
    """
    raw = validate_file(data)
    files = Files.from_env(base_dir, env)
    problems: list[ConfigError] = []
    graph = _collect(problems, lambda: resolve_graph(raw.graph, files, env))
    source_config = _collect(problems, lambda: resolve_source(raw.source))
    scim = _collect(problems, lambda: resolve_scim(raw.scim, files, env))
    if problems:
        raise combine(problems)
    assert graph is not None
    assert source_config is not None
    assert scim is not None
    return Config(
        graph=graph,
        source=source_config,
        scim=scim,
        state=resolve_state(raw.state, base_dir),
        safety=SafetyConfig(
            max_deletions=raw.safety.max_deletions,
            skip_out_of_scope_deletions=raw.safety.skip_out_of_scope_deletions,
        ),
        logging=LoggingConfig(level=raw.logging.level, format=raw.logging.format),
        path=source,
    )


def resolve_config_path(cli_value: str | Path | None, env: Mapping[str, str] = os.environ) -> Path:
    """The config file to read: --config, else $SYNCAGENT_CONFIG, else the default."""
    if cli_value is not None and str(cli_value) != "":
        return Path(cli_value)
    from_env = env.get(CONFIG_ENV, "")
    if from_env:
        return Path(from_env)
    return DEFAULT_CONFIG_PATH


def load_config(path: Path, env: Mapping[str, str] = os.environ) -> Config:
    """Read, check and resolve the TOML file at `path`; raises ConfigError."""
    shown = show_path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            "", f"config file {shown} not found", remedy=f"pass --config PATH or set {CONFIG_ENV}"
        ) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError("", f"cannot read config file {shown}: {reason}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError("", f"config file {shown} is not UTF-8 (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message names the line and column, never the values around them.
        raise ConfigError("", f"config file {shown} is not valid TOML: {exc}") from None
    config = parse_config(data, base_dir=path.absolute().parent, env=env, source=path)
    log.debug("configuration loaded from %s", path)
    return config
