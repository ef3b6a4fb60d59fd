"""A local Microsoft Graph: a mutable tenant served over loopback HTTP.

Tests and `syncagent demo` point the real Graph SDK at it instead of graph.microsoft.com.
"""

from syncagent.emulator.server import GraphEmulator, RecordedRequest
from syncagent.emulator.tenant import (
    Change,
    ChangeKind,
    EmulatedGroup,
    EmulatedUser,
    Member,
    Tenant,
)

__all__ = [
    "Change",
    "ChangeKind",
    "EmulatedGroup",
    "EmulatedUser",
    "GraphEmulator",
    "Member",
    "RecordedRequest",
    "Tenant",
]
