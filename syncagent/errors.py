"""The program's one exception tree.

Every error a user can fix carries the remedy. Adapters wrap third-party errors here
(`raise ... from exc`) and name the request that failed; only the CLI prints them and
chooses exit codes.
"""

from __future__ import annotations


class SyncAgentError(Exception):
    """Base of every error syncagent raises on purpose."""

    def __init__(self, message: str, *, remedy: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy

    def __str__(self) -> str:
        if self.remedy:
            return f"{self.message} ({self.remedy})"
        return self.message


class ConfigError(SyncAgentError):
    """The configuration is wrong: the message starts with the key path at fault."""

    def __init__(self, key: str, problem: str, *, remedy: str | None = None) -> None:
        super().__init__(f"{key}: {problem}" if key else problem, remedy=remedy)
        self.key = key
        self.problem = problem


class SourceError(SyncAgentError):
    """Microsoft Graph could not be read; nothing was changed because of it."""


class SourceAuthError(SourceError):
    """Graph refused our identity (401) or its permissions (403)."""


class TargetError(SyncAgentError):
    """A SCIM request failed. Carries what was asked and what the target answered."""

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        url: str = "",
        status: int | None = None,
        scim_type: str | None = None,
        detail: str | None = None,
        remedy: str | None = None,
    ) -> None:
        super().__init__(message, remedy=remedy)
        self.method = method
        self.url = url
        self.status = status
        self.scim_type = scim_type
        self.detail = detail


class TargetUnavailable(TargetError):
    """The SCIM endpoint could not be reached, or keeps failing: the run stops."""


class StateError(SyncAgentError):
    """The state database could not be opened, migrated or written."""


class Refused(SyncAgentError):
    """A safety guard stopped the run before anything was sent."""
