"""Shared fixtures: the Graph emulator, scim2-server, and SQLite/PostgreSQL state stores."""

pytest_plugins = [
    "tests.fixtures.emulator",
    "tests.fixtures.scim_server",
    "tests.fixtures.state",
]
