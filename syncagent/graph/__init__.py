"""Microsoft Graph, the directory the agent reads.

This package is the only one that imports msgraph, kiota and azure-identity; the rest of
the program sees `GraphSource` and the values in `syncagent.model`.
"""

from syncagent.graph import _quiet  # noqa: F401  (must precede the SDK imports)
from syncagent.graph.credentials import StaticTokenFileCredential, build_credential
from syncagent.graph.source import GraphSource

__all__ = ["GraphSource", "StaticTokenFileCredential", "build_credential"]
