"""The target side: SCIM request bodies in Entra's dialects, and the client that sends them."""
