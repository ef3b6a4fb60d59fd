"""Finding and reading the files a config names, and the secrets they hold.

A relative name is looked up in $CREDENTIALS_DIRECTORY first, where systemd's
LoadCredential= puts a service's secrets, then in the base directory (the config file's
folder). A secret may also come from an environment variable instead of a file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from syncagent.config.display import show_path
from syncagent.errors import ConfigError

CREDENTIALS_DIRECTORY_ENV = "CREDENTIALS_DIRECTORY"  # set by systemd's LoadCredential=

# Files the config names are small; anything bigger is almost certainly the wrong file.
_MAX_FILE_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Files:
    """Finds and reads the files a config names, the way systemd services expect."""

    base_dir: Path
    credentials_dir: Path | None

    @classmethod
    def from_env(cls, base_dir: Path, env: Mapping[str, str]) -> Files:
        credentials = env.get(CREDENTIALS_DIRECTORY_ENV)
        return cls(base_dir, Path(credentials) if credentials else None)

    def locate(self, name: str) -> tuple[Path, tuple[Path, ...]]:
        """The path to use, and every path looked at (for the error message)."""
        path = Path(name)
        if path.is_absolute():
            return path, (path,)
        tried: tuple[Path, ...] = ()
        if self.credentials_dir is not None:
            candidate = self.credentials_dir / path
            if candidate.is_file():
                return candidate, (candidate,)
            tried = (candidate,)
        local = self.base_dir / path
        return local, (*tried, local)

    def read(self, key: str, name: str) -> tuple[Path, bytes]:
        path, tried = self.locate(name)
        try:
            with path.open("rb") as stream:
                data = stream.read(_MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            looked = " or ".join(show_path(p) for p in tried)
            raise ConfigError(key, f"file not found: {looked}") from None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ConfigError(key, f"cannot read {show_path(path)}: {reason}") from None
        if len(data) > _MAX_FILE_BYTES:
            raise ConfigError(key, f"{show_path(path)} is larger than 1 MiB; is it the right file?")
        if not data.strip():
            raise ConfigError(key, f"{show_path(path)} is empty")
        return path, data

    def read_text(self, key: str, name: str) -> tuple[Path, str]:
        path, data = self.read(key, name)
        try:
            return path, data.decode("utf-8-sig").strip()
        except UnicodeDecodeError:
            raise ConfigError(key, f"{show_path(path)} is not UTF-8 text") from None


_BEARER_PREFIX = re.compile(r"bearer\s", re.IGNORECASE)


def bare_token(key: str, token: str, origin: str) -> SecretStr:
    """Refuse the usual paste mistakes, without ever showing the token."""
    if not token:
        raise ConfigError(key, f"the secret from {origin} is empty")
    if _BEARER_PREFIX.match(token):
        raise ConfigError(
            key, f'the secret from {origin} starts with "Bearer": paste the bare token'
        )
    if any(char.isspace() for char in token):
        raise ConfigError(
            key, f"the secret from {origin} contains whitespace: paste the bare token"
        )
    return SecretStr(token)


def read_secret(
    key: str, name: str | None, env_name: str, files: Files, env: Mapping[str, str]
) -> SecretStr | None:
    """A secret from the file the config names, else from the environment variable.

    The file wins: it is what the operator wrote down, while the environment may be
    inherited from somewhere else.
    """
    if name is not None:
        path, text = files.read_text(key, name)
        return bare_token(key, text, show_path(path))
    from_env = env.get(env_name, "").strip()
    if from_env:
        return bare_token(key, from_env, env_name)
    return None
