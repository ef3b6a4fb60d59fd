"""`syncagent demo`: the agent at work on a sample tenant, with no tenant and no network.

It starts the Graph emulator with a sample tenant and a scim2-server standing in for
SourceMagnet, both on loopback, then runs the same cycle `syncagent sync` runs.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from syncagent import logs
from syncagent.config import parse_config
from syncagent.emulator.scim import RunningScimTarget, scim_target
from syncagent.emulator.server import GraphEmulator
from syncagent.emulator.tenant import Tenant
from syncagent.render import result_text, roles_table
from syncagent.roles import applied_roles
from syncagent.runtime import Runtime, open_runtime

_GRAPH_TOKEN = "demo-graph-token"  # noqa: S105 (the emulator's own made-up token)
_SCIM_SECRET = "demo-provisioning-secret"  # noqa: S105 (the demo target's made-up secret)

Echo = Callable[[str], None]


def run_demo(echo: Echo, *, keep: bool = False, log_level: str = "warning") -> None:
    logs.configure(log_level)
    workdir = Path(tempfile.mkdtemp(prefix="syncagent-demo-"))
    tenant = Tenant.sample()
    try:
        with (
            GraphEmulator(tenant, token=_GRAPH_TOKEN) as graph,
            scim_target(_SCIM_SECRET) as target,
        ):
            (workdir / "graph-token").write_text(_GRAPH_TOKEN)
            (workdir / "scim-secret").write_text(_SCIM_SECRET)
            config = parse_config(
                {
                    "graph": {
                        "credential": "token",
                        "token_file": "graph-token",
                        "base_url": graph.base_url,
                    },
                    "source": {"group_prefix": "SourceMagnet"},
                    "scim": {"base_url": target.base_url, "secret_file": "scim-secret"},
                    "state": {"url": f"sqlite:///{workdir / 'state.db'}"},
                },
                base_dir=workdir,
                env={},
            )
            echo(
                "syncagent demo: a sample Entra tenant (Graph emulator at "
                f"{graph.base_url}) and a SCIM server standing in for SourceMagnet "
                f"({target.base_url}), both on this machine.\n"
            )
            with open_runtime(config) as runtime:
                _story(echo, runtime, tenant, target)
    finally:
        if keep:
            echo(f"\nThe demo's state database is kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _section(echo: Echo, title: str) -> None:
    echo(f"\n=== {title}\n")


def _story(echo: Echo, runtime: Runtime, tenant: Tenant, target: RunningScimTarget) -> None:
    _section(echo, "1. What would a sync send?  (syncagent sync --dry-run)")
    echo(result_text(runtime.sync(dry_run=True), show_requests=True))

    _section(echo, "2. Apply it  (syncagent sync)")
    echo(result_text(runtime.sync(), show_requests=False))

    _section(echo, "3. Roles SourceMagnet now grants  (syncagent roles)")
    echo(roles_table(applied_roles(runtime.store.load())))

    _section(echo, "4. Meanwhile, in Entra ID")
    for line in _change_tenant(tenant):
        echo(f"  - {line}")

    _section(echo, "5. Sync again: each change becomes the request Entra's push would send")
    echo(result_text(runtime.sync(), show_requests=True))

    _section(echo, "6. Roles now")
    echo(roles_table(applied_roles(runtime.store.load())))

    _section(echo, "7. A sync with nothing new sends no writes")
    echo(result_text(runtime.sync(), show_requests=False))

    users = target.users()
    active = sum(1 for u in users if u.get("active"))
    echo(
        f"\nThe SCIM server holds {len(users)} users ({active} active) and "
        f"{len(target.groups())} groups."
    )


def _user_id(tenant: Tenant, upn: str) -> str:
    user = tenant.find_user(upn)
    if user is None:  # pragma: no cover - the sample tenant defines these users
        raise LookupError(upn)
    return user.id


def _group_id(tenant: Tenant, name: str) -> str:
    group = tenant.find_group(name)
    if group is None:  # pragma: no cover
        raise LookupError(name)
    return group.id


def _change_tenant(tenant: Tenant) -> list[str]:
    megan = _user_id(tenant, "megan.bowen@contoso.com")
    tenant.add_members(_group_id(tenant, "SourceMagnetSourcingCreator"), megan)
    diego = _user_id(tenant, "diego.siciliani@contoso.com")
    tenant.update_user(diego, account_enabled=False)
    alex = _user_id(tenant, "alex.wilber@contoso.com")
    tenant.update_user(alex, job_title="Senior Buyer")
    johanna = _user_id(tenant, "johanna.lorenz@contoso.com")
    for name in ("SourceMagnetContractCreator", "SourceMagnetSourcingViewer"):
        tenant.remove_members(_group_id(tenant, name), johanna)
    isaiah = _user_id(tenant, "isaiah.langer@contoso.com")
    tenant.update_user(isaiah, account_enabled=True)
    lidia = _user_id(tenant, "lidia.holloway@contoso.com")
    tenant.hard_delete_user(lidia)
    return [
        "Megan Bowen is promoted: added to SourceMagnetSourcingCreator",
        "Diego Siciliani's account is disabled (blocked sign-in)",
        "Alex Wilber's job title becomes Senior Buyer",
        "Johanna Lorenz is removed from both her SourceMagnet groups (leaves scope)",
        "Isaiah Langer's account is enabled, so he is provisioned at last",
        "Lidia Holloway is deleted permanently",
    ]
