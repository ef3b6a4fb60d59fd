"""syncagent: pull-based provisioning from Microsoft Entra ID to SourceMagnet over SCIM."""

__version__ = "0.1.0"
