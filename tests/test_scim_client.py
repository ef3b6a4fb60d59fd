"""The SCIM client over HTTP against a real scim2-server (strict and Entra-tolerant)."""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from pydantic import SecretStr

from syncagent import __version__
from syncagent.errors import TargetError, TargetUnavailable
from syncagent.scim.client import ScimClient, SentRequest
from syncagent.scim.requests import (
    AttributeChange,
    Dialect,
    diff_attributes,
    flatten_user,
    group_create_body,
    group_patch_body,
    members_add_body,
    members_remove_bodies,
    user_create_body,
    user_patch_body,
)
from tests.fixtures.scim_server import (  # noqa: F401 (fixtures)
    RecordedScimRequest,
    ScimServer,
    scim_server_fixture,
    strict_scim_server_fixture,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

ALICE = {
    "userName": "alice@example.com",
    "active": True,
    "title": "Buyer",
    "name.givenName": "Alice",
    "name.familyName": "Smith",
}


@dataclass
class Harness:
    client: ScimClient
    sent: list[SentRequest] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)


@pytest.fixture
def connect() -> Iterator[Callable[..., Harness]]:
    """Build clients that record what they send and how long they would have slept."""
    clients: list[ScimClient] = []

    def build(base_url: str, token: str = "test-scim-token", **options: Any) -> Harness:
        sent: list[SentRequest] = []
        sleeps: list[float] = []
        client = ScimClient(base_url, token, on_request=sent.append, sleep=sleeps.append, **options)
        clients.append(client)
        return Harness(client, sent, sleeps)

    yield build
    for client in clients:
        client.close()


@pytest.fixture(
    params=[Dialect.DEFAULT, Dialect.COMPLIANT], ids=["default-tolerant", "compliant-strict"]
)
def target(request: pytest.FixtureRequest) -> tuple[Dialect, ScimServer]:
    """Entra's default dialect against the tolerant server, the compliant one against strict."""
    dialect: Dialect = request.param
    name = "scim_server" if dialect is Dialect.DEFAULT else "strict_scim_server"
    server: ScimServer = request.getfixturevalue(name)
    return dialect, server


def _members(server: ScimServer, group_id: str) -> list[str]:
    response = httpx.get(
        f"{server.base_url}/Groups/{group_id}",
        headers={"Authorization": f"Bearer {server.token}"},
    )
    response.raise_for_status()
    return sorted(m["value"] for m in response.json().get("members", []))


def _bodies(requests: Iterable[RecordedScimRequest]) -> list[Any]:
    return [r.body for r in requests]


# -- probe -------------------------------------------------------------------------------


def test_probe_sends_entras_dummy_user_query(
    scim_server: ScimServer, connect: Callable[..., Harness]
) -> None:
    harness = connect(scim_server.base_url)
    harness.client.probe()

    (probe,) = scim_server.requests
    assert (probe.method, probe.path, probe.status) == ("GET", "/v2/Users", 200)
    assert re.fullmatch(r"filter=userName\+eq\+%22[0-9a-f-]{36}%22", probe.query)
    assert probe.body is None
    assert probe.headers["authorization"] == "Bearer test-scim-token"
    assert probe.headers["accept"] == "application/scim+json"
    assert probe.headers["user-agent"] == f"syncagent/{__version__}"
    assert "content-type" not in probe.headers
    assert harness.sent == [SentRequest("GET", probe.target, None, 200, True)]


def test_probe_with_a_wrong_token_names_the_secret(
    scim_server: ScimServer, connect: Callable[..., Harness]
) -> None:
    harness = connect(scim_server.base_url, token="wrong-token-0123")
    with pytest.raises(TargetError) as caught:
        harness.client.probe()

    error = caught.value
    assert not isinstance(error, TargetUnavailable)
    assert error.status == 401
    assert error.method == "GET"
    assert "scim.secret_file" in str(error)
    assert str(error).startswith(f"GET {scim_server.base_url}/Users?filter=userName+eq+%22")
    assert " answered 401 Unauthorized: Authorization failure" in str(error)
    assert "wrong-token-0123" not in str(error)
    assert harness.sleeps == []


def test_probe_of_a_wrong_base_url_names_the_setting(
    scim_server: ScimServer, connect: Callable[..., Harness]
) -> None:
    harness = connect(scim_server.base_url + "/Tenants/none")
    with pytest.raises(TargetError) as caught:
        harness.client.probe()
    assert caught.value.status == 404
    assert "scim.base_url" in str(caught.value)


def test_probe_fails_when_the_dummy_user_is_found() -> None:
    listing = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 3}
    with (
        ScimClient(
            "http://scim.test/v2", "fake-token", transport=_fake(200, "application/json", listing)
        ) as client,
        pytest.raises(TargetError, match="empty ListResponse") as caught,
    ):
        client.probe()
    assert "scim.base_url" in str(caught.value)


# -- users and groups, both dialects -----------------------------------------------------


def test_user_lifecycle(
    target: tuple[Dialect, ScimServer], connect: Callable[..., Harness]
) -> None:
    dialect, server = target
    client = connect(server.base_url).client

    created_body = user_create_body(ALICE)
    created = client.create_user(created_body)
    scim_id = created["id"]
    assert flatten_user(created) == ALICE

    found = client.find_users("alice@example.com")
    assert [u["id"] for u in found] == [scim_id]
    assert client.find_users("nobody@example.com") == []

    live = client.get_user(scim_id)
    assert live is not None
    desired = {
        **ALICE,
        "title": "Lead buyer",
        "name.givenName": "Alicia",
        "userName": "alicia@example.com",
    }
    changes = diff_attributes(desired, flatten_user(live))
    client.patch_user(scim_id, user_patch_body(changes, dialect))
    disable = user_patch_body([AttributeChange("active", False, "replace")], dialect)
    client.patch_user(scim_id, disable)

    after = client.get_user(scim_id)
    assert after is not None
    assert flatten_user(after) == {**desired, "active": False}

    assert client.delete_user(scim_id) is True
    assert client.delete_user(scim_id) is False
    assert client.get_user(scim_id) is None

    writes = server.writes()
    assert [(w.method, w.target, w.status) for w in writes] == [
        ("POST", "/Users", 201),
        ("PATCH", f"/Users/{scim_id}", 204),
        ("PATCH", f"/Users/{scim_id}", 204),
        ("DELETE", f"/Users/{scim_id}", 204),
        ("DELETE", f"/Users/{scim_id}", 404),
    ]
    assert _bodies(writes[:3]) == [created_body, user_patch_body(changes, dialect), disable]
    assert writes[0].headers["content-type"] == "application/scim+json"
    queries = [r.query for r in server.requests if r.method == "GET" and r.path == "/v2/Users"]
    assert queries == [
        "filter=userName+eq+%22alice%40example.com%22",
        "filter=userName+eq+%22nobody%40example.com%22",
    ]


def test_group_lifecycle(
    target: tuple[Dialect, ScimServer], connect: Callable[..., Harness]
) -> None:
    dialect, server = target
    client = connect(server.base_url).client
    users = [
        client.create_user(user_create_body({"userName": f"u{i}@example.com", "active": True}))[
            "id"
        ]
        for i in range(3)
    ]

    created = client.create_group(group_create_body("SourceMagnetAdmin", "entra-object-id"))
    group_id = created["id"]
    assert (created["displayName"], created["externalId"]) == (
        "SourceMagnetAdmin",
        "entra-object-id",
    )
    assert [g["id"] for g in client.find_groups("SourceMagnetAdmin")] == [group_id]
    assert client.find_groups("SourceMagnetViewer") == []

    server.clear()
    client.patch_group(group_id, members_add_body(users, dialect))
    assert _members(server, group_id) == sorted(users)
    removals = members_remove_bodies(users[:2], dialect)
    for removal in removals:
        client.patch_group(group_id, removal)
    assert _members(server, group_id) == [users[2]]

    rename = group_patch_body(
        [AttributeChange("displayName", "SourceMagnetViewer", "replace")], dialect
    )
    client.patch_group(group_id, rename)
    read = client.get_group(group_id)
    assert read is not None
    assert read["displayName"] == "SourceMagnetViewer"
    assert "members" not in read

    assert client.delete_group(group_id) is True
    assert client.delete_group(group_id) is False
    assert client.get_group(group_id) is None

    patches = [w for w in server.writes() if w.method == "PATCH"]
    assert all(p.status == 204 for p in patches)
    assert _bodies(patches) == [members_add_body(users, dialect), *removals, rename]
    assert len(removals) == (1 if dialect is Dialect.DEFAULT else 2)
    group_reads = [
        r
        for r in server.requests
        if r.method == "GET"
        and r.path.startswith("/v2/Groups/")
        and r.headers.get("user-agent", "").startswith("syncagent/")
    ]
    assert {r.query for r in group_reads} == {"excludedAttributes=members"}


def test_group_queries_exclude_members_first(
    scim_server: ScimServer, connect: Callable[..., Harness]
) -> None:
    client = connect(scim_server.base_url).client
    client.find_groups('Source "Magnet"')
    (query,) = scim_server.requests
    assert (
        query.target == "/Groups?excludedAttributes=members"
        "&filter=displayName+eq+%22Source+%5C%22Magnet%5C%22%22"
    )


def test_several_matches_are_returned_as_they_are(
    scim_server: ScimServer, connect: Callable[..., Harness]
) -> None:
    client = connect(scim_server.base_url).client
    first = client.create_group(group_create_body("SourceMagnetAdmin", "a"))["id"]
    second = client.create_group(group_create_body("SourceMagnetAdmin", "b"))["id"]
    assert sorted(g["id"] for g in client.find_groups("SourceMagnetAdmin")) == sorted(
        [first, second]
    )


def test_default_member_removal_is_refused_by_a_strict_server(
    strict_scim_server: ScimServer, connect: Callable[..., Harness]
) -> None:
    client = connect(strict_scim_server.base_url).client
    user = client.create_user(user_create_body({"userName": "a@example.com"}))["id"]
    group = client.create_group(group_create_body("SourceMagnetAdmin", "oid"))["id"]
    client.patch_group(group, members_add_body([user], Dialect.DEFAULT))
    (removal,) = members_remove_bodies([user], Dialect.DEFAULT)
    with pytest.raises(TargetError) as caught:
        client.patch_group(group, removal)
    assert (caught.value.status, caught.value.scim_type) == (400, "invalidValue")
    assert _members(strict_scim_server, group) == [user]


def test_default_user_bodies_are_accepted_by_a_strict_server(
    strict_scim_server: ScimServer, connect: Callable[..., Harness]
) -> None:
    """Capitalised ops and "False" strings: scim2-server reads them even strictly."""
    client = connect(strict_scim_server.base_url).client
    scim_id = client.create_user(user_create_body(ALICE))["id"]
    client.patch_user(
        scim_id,
        user_patch_body(
            [AttributeChange("active", False, "replace"), AttributeChange("title", "T", "replace")],
            Dialect.DEFAULT,
        ),
    )
    after = client.get_user(scim_id)
    assert after is not None
    assert (after["active"], after["title"]) == (False, "T")


# -- errors ------------------------------------------------------------------------------


def test_duplicate_create_is_a_uniqueness_error(
    scim_server: ScimServer, connect: Callable[..., Harness]
) -> None:
    client = connect(scim_server.base_url).client
    client.create_user(user_create_body(ALICE))
    with pytest.raises(TargetError) as caught:
        client.create_user(user_create_body(ALICE))

    error = caught.value
    assert (error.method, error.url, error.status, error.scim_type) == (
        "POST",
        f"{scim_server.base_url}/Users",
        409,
        "uniqueness",
    )
    assert error.detail is not None
    assert error.message == (
        f"POST {scim_server.base_url}/Users answered 409 Conflict (uniqueness): {error.detail}"
    )
    assert error.detail.startswith("One or more of the attribute values are already in use")
    assert error.remedy is None


def test_missing_resources(scim_server: ScimServer, connect: Callable[..., Harness]) -> None:
    client = connect(scim_server.base_url).client
    assert client.get_user("does-not-exist") is None
    assert client.get_group("does-not-exist") is None
    assert client.delete_user("does-not-exist") is False
    assert client.delete_group("does-not-exist") is False
    with pytest.raises(TargetError) as caught:
        client.patch_user(
            "does-not-exist",
            user_patch_body([AttributeChange("title", "x", "add")], Dialect.DEFAULT),
        )
    assert caught.value.status == 404


def test_ids_are_sent_as_one_path_segment(
    scim_server: ScimServer, connect: Callable[..., Harness]
) -> None:
    harness = connect(scim_server.base_url)
    assert harness.client.get_user("a/b c") is None
    assert [s.path for s in harness.sent] == ["/Users/a%2Fb%20c"]
    assert [r.status for r in scim_server.requests] == [404]


# -- retries -----------------------------------------------------------------------------


def test_429_is_retried_after_retry_after(
    scim_server: ScimServer, connect: Callable[..., Harness], caplog: pytest.LogCaptureFixture
) -> None:
    harness = connect(scim_server.base_url)
    scim_server.fail_next(429, headers={"Retry-After": "7"}, method="POST")
    with caplog.at_level(logging.WARNING, logger="syncagent.scim.client"):
        created = harness.client.create_user(user_create_body(ALICE))

    assert created["userName"] == "alice@example.com"
    assert harness.sleeps == [7.0]
    assert [(r.method, r.status) for r in scim_server.requests] == [("POST", 429), ("POST", 201)]
    assert [s.status for s in harness.sent] == [429, 201]
    assert harness.sent[0].body == user_create_body(ALICE)
    (warning,) = caplog.records
    assert warning.levelno == logging.WARNING
    assert "POST /Users" in warning.getMessage()
    assert "429" in warning.getMessage()
    assert "7.0s" in warning.getMessage()


def test_retry_after_as_a_date_and_capped(
    scim_server: ScimServer, connect: Callable[..., Harness]
) -> None:
    harness = connect(scim_server.base_url)
    soon = email.utils.formatdate(time.time() + 30, usegmt=True)
    scim_server.fail_next(503, headers={"Retry-After": soon})
    scim_server.fail_next(429, headers={"Retry-After": "3600"})
    assert harness.client.find_users("a@example.com") == []
    assert len(harness.sleeps) == 2
    assert 25 <= harness.sleeps[0] <= 30
    assert harness.sleeps[1] == 120.0


def test_overload_without_retry_after_backs_off_exponentially(
    scim_server: ScimServer, connect: Callable[..., Harness]
) -> None:
    harness = connect(scim_server.base_url, max_retries=3)
    scim_server.fail_next(503, times=2)
    scim_server.fail_next(502)
    assert harness.client.get_user("x") is None
    assert len(harness.sleeps) == 3
    for wait, base in zip(harness.sleeps, (1, 2, 4), strict=True):
        assert base <= wait <= base * 1.25


def test_retries_are_bounded(scim_server: ScimServer, connect: Callable[..., Harness]) -> None:
    harness = connect(scim_server.base_url, max_retries=2)
    scim_server.fail_next(429, headers={"Retry-After": "1"}, times=5)
    with pytest.raises(TargetUnavailable) as caught:
        harness.client.find_users("a@example.com")
    assert caught.value.status == 429
    assert harness.sleeps == [1.0, 1.0]
    assert len(scim_server.requests) == 3


@pytest.mark.parametrize("status", [503, 502, 504])
def test_post_is_not_retried_when_it_may_have_been_processed(
    scim_server: ScimServer, connect: Callable[..., Harness], status: int
) -> None:
    harness = connect(scim_server.base_url)
    scim_server.fail_next(status)
    with pytest.raises(TargetUnavailable) as caught:
        harness.client.create_user(user_create_body(ALICE))
    assert caught.value.status == status
    assert harness.sleeps == []
    assert len(scim_server.requests) == 1


def test_post_is_retried_on_503_with_retry_after(
    scim_server: ScimServer, connect: Callable[..., Harness]
) -> None:
    harness = connect(scim_server.base_url)
    scim_server.fail_next(503, headers={"Retry-After": "2"})
    harness.client.create_user(user_create_body(ALICE))
    assert harness.sleeps == [2.0]


def test_closed_port_is_unavailable(connect: Callable[..., Harness]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    harness = connect(f"http://127.0.0.1:{port}/scim/v2", max_retries=2)
    with pytest.raises(TargetUnavailable) as caught:
        harness.client.create_user(user_create_body(ALICE))
    assert (
        str(caught.value)
        == f"cannot reach http://127.0.0.1:{port}/scim/v2/Users: connection refused"
    )
    assert caught.value.url == f"http://127.0.0.1:{port}/scim/v2/Users"
    assert len(harness.sleeps) == 2  # nothing was sent: even a POST is retried
    assert harness.sent == []


@contextlib.contextmanager
def _mute_server(answer: str) -> Iterator[tuple[str, list[socket.socket]]]:
    """Accepts connections and reads, then never answers ("hang") or hangs up ("drop")."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.05)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(conn)
            conn.settimeout(1)
            with contextlib.suppress(OSError):
                conn.recv(65536)
            if answer == "drop":
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v2", accepted
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        listener.close()


@pytest.mark.parametrize("answer", ["hang", "drop"])
def test_post_is_not_retried_after_it_went_out(
    answer: str, connect: Callable[..., Harness]
) -> None:
    with _mute_server(answer) as (base_url, accepted):
        harness = connect(base_url, timeout=0.3, max_retries=2)
        with pytest.raises(TargetUnavailable) as caught:
            harness.client.create_user(user_create_body(ALICE))
    assert len(accepted) == 1
    assert harness.sleeps == []
    assert "may have been processed" in str(caught.value)
    assert str(caught.value).startswith(f"cannot reach {base_url}/Users: ")
    assert [(s.method, s.status) for s in harness.sent] == [("POST", None)]


@pytest.mark.parametrize("answer", ["hang", "drop"])
def test_idempotent_requests_are_retried_after_they_went_out(
    answer: str, connect: Callable[..., Harness]
) -> None:
    with _mute_server(answer) as (base_url, accepted):
        harness = connect(base_url, timeout=0.3, max_retries=1)
        with pytest.raises(TargetUnavailable) as caught:
            harness.client.patch_user(
                "1", user_patch_body([AttributeChange("title", "x", "add")], Dialect.DEFAULT)
            )
    assert len(accepted) == 2
    assert len(harness.sleeps) == 1
    if answer == "hang":
        assert str(caught.value) == f"cannot reach {base_url}/Users/1: no answer within 0.3s"


# -- answers that are SCIM-ish rather than SCIM ------------------------------------------


def _fake(status: int, content_type: str, payload: Any) -> httpx.WSGITransport:
    """A vendor endpoint that answers every request the same way."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        start_response(f"{status} X", [("Content-Type", content_type)])
        return [raw]

    return httpx.WSGITransport(app=app)


def test_plain_json_and_missing_resources_are_accepted() -> None:
    listing = {"totalResults": 0, "itemsPerPage": 0}
    with ScimClient(
        "http://scim.test/v2",
        "fake-token",
        transport=_fake(200, "application/json; charset=utf-8", listing),
    ) as client:
        client.probe()
        assert client.find_users("a@example.com") == []


def test_unknown_attributes_are_kept() -> None:
    user = {"id": "1", "userName": "a", "urn:vendor:2.0:User": {"colour": "red"}, "favourite": 3}
    with ScimClient(
        "http://scim.test/v2", "fake-token", transport=_fake(201, "application/scim+json", user)
    ) as client:
        assert client.create_user(user_create_body({"userName": "a"})) == user


def _create(client: ScimClient) -> object:
    return client.create_user(user_create_body({"userName": "a"}))


def _find(client: ScimClient) -> object:
    return client.find_users("a")


def _read(client: ScimClient) -> object:
    return client.get_user("1")


@pytest.mark.parametrize(
    ("status", "content_type", "payload", "call", "message"),
    [
        (
            200,
            "text/html",
            b"<html>login</html>",
            _read,
            "with Content-Type text/html, not SCIM JSON",
        ),
        (200, "application/json", b"{not json", _read, "with a body that is not JSON"),
        (200, "application/json", [1, 2], _read, "did not answer with a SCIM resource object"),
        (
            201,
            "application/scim+json",
            {"userName": "a"},
            _create,
            "did not answer with the created resource with an id",
        ),
        (
            200,
            "application/json",
            {"totalResults": 2},
            _find,
            "did not answer with a ListResponse with Resources",
        ),
        (200, "application/json", {"totalResults": 1, "Resources": ["x"]}, _find, "with Resources"),
    ],
)
def test_malformed_answers(
    status: int, content_type: str, payload: Any, call: Callable[[ScimClient], object], message: str
) -> None:
    with (
        ScimClient(
            "http://scim.test/v2", "fake-token", transport=_fake(status, content_type, payload)
        ) as client,
        pytest.raises(TargetError, match=re.escape(message)),
    ):
        call(client)


def test_non_scim_error_body_is_quoted_on_one_line() -> None:
    page = b"<html>\n<body>Bad gateway " + b"x" * 400 + b"</body></html>"
    with (
        ScimClient(
            "http://scim.test/v2", "fake-token", transport=_fake(500, "text/html", page)
        ) as client,
        pytest.raises(TargetError) as caught,
    ):
        client.get_user("1")
    assert not isinstance(caught.value, TargetUnavailable)
    assert caught.value.status == 500
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(
        "GET http://scim.test/v2/Users/1 answered 500 Internal Server Error: "
        "<html> <body>Bad gateway xxx"
    )
    assert caught.value.detail is not None
    assert len(caught.value.detail) <= 200


def test_403_names_the_secret() -> None:
    error = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": "403",
        "detail": "nope",
    }
    with (
        ScimClient(
            "http://scim.test/v2",
            "fake-token",
            transport=_fake(403, "application/scim+json", error),
        ) as client,
        pytest.raises(
            TargetError, match=re.escape("(check the provisioning secret (scim.secret_file))")
        ),
    ):
        client.delete_group("1")


# -- the secret --------------------------------------------------------------------------


def test_token_never_leaks(
    scim_server: ScimServer, connect: Callable[..., Harness], caplog: pytest.LogCaptureFixture
) -> None:
    token = scim_server.token
    texts: list[str] = []
    with caplog.at_level(logging.DEBUG):
        good = connect(scim_server.base_url)
        bad = connect(scim_server.base_url, token="wrong-secret-4567")
        texts += [repr(good.client), repr(bad.client)]
        scim_server.fail_next(429, headers={"Retry-After": "1"})
        good.client.probe()
        created = good.client.create_user(user_create_body(ALICE))
        calls: list[Callable[[], object]] = [
            bad.client.probe,
            lambda: good.client.create_user(user_create_body(ALICE)),
            lambda: bad.client.get_user(created["id"]),
        ]
        for call in calls:
            with pytest.raises(TargetError) as caught:
                call()
            texts += [str(caught.value), repr(caught.value), repr(caught.value.__dict__)]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with pytest.raises(TargetUnavailable) as unreachable:
            connect(f"http://127.0.0.1:{port}", token=token, max_retries=0).client.probe()
        texts += [str(unreachable.value), repr(unreachable.value.__dict__)]

    texts += [record.getMessage() for record in caplog.records]
    texts += [repr(s) for s in good.sent + bad.sent]
    assert caplog.records  # the retry warning and debug lines were captured
    for text in texts:
        assert token not in text
        assert "wrong-secret-4567" not in text


def test_secret_str_token(scim_server: ScimServer) -> None:
    with ScimClient(scim_server.base_url, SecretStr(scim_server.token)) as client:
        client.probe()
    assert scim_server.requests[0].headers["authorization"] == f"Bearer {scim_server.token}"
