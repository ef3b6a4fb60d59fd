"""The command line: the only place that prints, and that chooses exit codes."""

from __future__ import annotations

import functools
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from syncagent import __version__, logs
from syncagent.errors import ConfigError, Refused, SyncAgentError

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_CONFIG = 2
EXIT_REFUSED = 3
EXIT_FAILED = 4
EXIT_INTERNAL = 70

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str, code: int) -> None:
    click.echo(f"syncagent: {message}", err=True)
    sys.exit(code)


def handle_errors(func: F) -> F:
    """Turns every error into one line on stderr and an exit code; tracebacks only with --debug."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = bool(click.get_current_context().find_root().params.get("debug"))
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            if debug:
                traceback.print_exc()
            _fail(f"configuration error: {exc}", EXIT_CONFIG)
        except Refused as exc:
            _fail(f"refused: {exc}", EXIT_REFUSED)
        except SyncAgentError as exc:
            if debug:
                traceback.print_exc()
            _fail(str(exc), EXIT_FAILED)
        except (click.exceptions.Exit, click.ClickException, SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:
            if debug:
                traceback.print_exc()
            _fail(
                f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
                EXIT_INTERNAL,
            )
        return None

    return wrapper  # type: ignore[return-value]


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Configuration file (default: $SYNCAGENT_CONFIG, else /etc/syncagent/syncagent.toml).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Log everything and show tracebacks.")
@click.option("-v", "--verbose", is_flag=True, help="Log at debug level for syncagent only.")
@click.version_option(__version__, prog_name="syncagent")
@click.pass_context
def main(ctx: click.Context, debug: bool, verbose: bool) -> None:
    """Pull-based provisioning from Microsoft Entra ID to SourceMagnet over SCIM.

    \b
    Exit codes:
      0  success (or, dry run, a plan was made)
      1  partial: some objects failed; they are retried on the next run
      2  usage or configuration error
      3  refused by a safety guard; nothing was sent
      4  the cycle failed: Graph, the SCIM endpoint or the state database
         could not be reached, read or written
      70 internal error
    """
    ctx.ensure_object(dict)


def _load(config_path: Path | None) -> Any:
    from syncagent.config import load_config, resolve_config_path

    ctx = click.get_current_context().find_root()
    config = load_config(resolve_config_path(config_path))
    level = (
        "debug" if ctx.params.get("debug") or ctx.params.get("verbose") else (config.logging.level)
    )
    secrets = [config.scim.secret.get_secret_value()]
    if config.graph.client_secret is not None:
        secrets.append(config.graph.client_secret.get_secret_value())
    logs.configure(level, config.logging.format, secrets)
    return config


@main.command()
@config_option
@click.option(
    "--dry-run", is_flag=True, help="Show every request a sync would send; send only reads."
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan and result as JSON.")
@click.option(
    "--allow-deletions",
    is_flag=True,
    help="Let this run disable or delete more than safety.max_deletions objects.",
)
@handle_errors
def sync(config_path: Path | None, dry_run: bool, as_json: bool, allow_deletions: bool) -> None:
    """Run one sync cycle: read Graph, compare with state, apply over SCIM."""
    from syncagent.cycle import RunStatus
    from syncagent.render import result_text
    from syncagent.runtime import open_runtime

    config = _load(config_path)
    with open_runtime(config) as runtime:
        result = runtime.sync(dry_run=dry_run, allow_deletions=allow_deletions)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(result_text(result, show_requests=dry_run))
    if result.error is not None:
        click.echo(f"syncagent: {result.status}: {result.error}", err=True)
    sys.exit(
        {
            RunStatus.SUCCESS: EXIT_OK,
            RunStatus.PARTIAL: EXIT_PARTIAL,
            RunStatus.REFUSED: EXIT_REFUSED,
            RunStatus.FAILED: EXIT_FAILED,
        }[result.status]
    )


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--live",
    is_flag=True,
    help="Read the roles Entra grants now from Graph, instead of what was applied.",
)
@handle_errors
def roles(config_path: Path | None, as_json: bool, live: bool) -> None:
    """List users with their SourceMagnet roles."""
    from syncagent.render import roles_table
    from syncagent.roles import applied_roles, live_roles
    from syncagent.runtime import open_runtime

    config = _load(config_path)
    with open_runtime(config) as runtime:
        rows = live_roles(runtime.source) if live else applied_roles(runtime.store.load())
    if as_json:
        click.echo(json.dumps([row.to_dict() for row in rows], indent=2))
    else:
        click.echo(roles_table(rows))


@main.command()
@click.option("--keep", is_flag=True, help="Keep the demo's state and config directory.")
@handle_errors
def demo(keep: bool) -> None:
    """Watch the agent work against a built-in sample tenant and SCIM server (offline)."""
    from syncagent.demo import run_demo

    run_demo(click.echo, keep=keep)


if __name__ == "__main__":  # pragma: no cover
    main()
