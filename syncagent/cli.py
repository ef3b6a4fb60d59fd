"""The command line: the only place that prints, and that chooses exit codes.

Results go to stdout (text, or one JSON document with --json); logs and the one-line
reason for a non-zero exit go to stderr, so `syncagent sync --json | jq` always reads
valid JSON. Every line that leaves here passes the log redaction first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from syncagent import __version__, logs
from syncagent.errors import ConfigError, Refused, SyncAgentError

if TYPE_CHECKING:
    from syncagent.config import Config
    from syncagent.cycle import CycleResult

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_CONFIG = 2
EXIT_REFUSED = 3
EXIT_FAILED = 4
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130  # the shell's convention for SIGINT
EXIT_BROKEN_PIPE = 141  # the shell's convention for SIGPIPE

F = TypeVar("F", bound=Callable[..., Any])

_SYNC_EXIT_CODES = """\b
Exit codes:
  0  success (or, dry run, a plan was made)
  1  partial: some objects failed; they are retried on the next run
  2  usage or configuration error
  3  refused: a safety guard, or another sync holds the state;
     nothing was sent
  4  failed: Graph, the SCIM endpoint or the state database could not
     be reached, read or written
  70 internal error; 130 interrupted
"""

_READ_EXIT_CODES = """\b
Exit codes:
  0  success
  2  usage or configuration error
  4  failed: Graph or the state database could not be read
  70 internal error; 130 interrupted
"""


def _debug() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().params.get("debug"))


def _fail(message: str, code: int) -> NoReturn:
    """One line on stderr, then exit: the whole story a cron mail or a journal needs."""
    line = " ".join(logs.redact(message).split())
    click.echo(f"syncagent: {line}", err=True)
    sys.exit(code)


def _emit(text: str) -> None:
    """Print a result to stdout; a reader that went away (`| head`) is not an error.

    The run's exit code still stands: what was applied was applied.
    """
    try:
        click.echo(logs.redact(text))
    except BrokenPipeError:
        _discard_stdout()


def _discard_stdout() -> None:
    # Point stdout at /dev/null, so that the flush at exit does not fail again.
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _print_traceback(exc: BaseException) -> None:
    """With --debug only: the traceback, through the same redaction as the logs."""
    text = "".join(traceback.format_exception(exc))
    click.echo(logs.redact(text).rstrip("\n"), err=True)


def _classify(exc: SyncAgentError) -> tuple[str, int]:
    """How an error is introduced on stderr, and the exit code it ends with."""
    if isinstance(exc, ConfigError):
        return "configuration error", EXIT_CONFIG
    if isinstance(exc, Refused):
        return "refused", EXIT_REFUSED
    return "failed", EXIT_FAILED


def handle_errors(func: F) -> F:
    """Turns every error into one line on stderr and an exit code; tracebacks only with --debug."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = _debug()
        try:
            return func(*args, **kwargs)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt:
            _fail("interrupted", EXIT_INTERRUPTED)
        except BrokenPipeError:
            _discard_stdout()  # the reader left (`syncagent demo | head`): stop quietly
            sys.exit(EXIT_BROKEN_PIPE)
        except SyncAgentError as exc:
            if debug:
                _print_traceback(exc)
            label, code = _classify(exc)
            _fail(f"{label}: {exc}", code)
        except Exception as exc:
            if debug:
                _print_traceback(exc)
            hint = "" if debug else " (run with --debug for the traceback)"
            _fail(f"internal error: {type(exc).__name__}: {exc}{hint}", EXIT_INTERNAL)

    return wrapper  # type: ignore[return-value]


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Configuration file (default: $SYNCAGENT_CONFIG, else /etc/syncagent/syncagent.toml).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--debug",
    is_flag=True,
    help="Log everything at debug level, libraries included, and show tracebacks.",
)
@click.option(
    "-v", "--verbose", is_flag=True, help="Log at debug level for syncagent only (no tracebacks)."
)
@click.version_option(__version__, prog_name="syncagent")
@click.pass_context
def main(ctx: click.Context, debug: bool, verbose: bool) -> None:
    """Pull-based provisioning from Microsoft Entra ID to SourceMagnet over SCIM.

    Results go to stdout; logs and the reason for a non-zero exit go to stderr.

    \b
    Exit codes:
      0   success (or, dry run, a plan was made)
      1   partial: some objects failed; they are retried on the next run
      2   usage or configuration error
      3   refused: a safety guard, or another sync holds the state;
          nothing was sent
      4   failed: Graph, the SCIM endpoint or the state database
          could not be reached, read or written
      70  internal error
      130 interrupted
    """
    ctx.ensure_object(dict)


def _secrets(config: Config) -> list[str]:
    """Every secret value the run could hold in memory, for the log redaction."""
    graph = config.graph
    values = [config.scim.secret.get_secret_value()]
    for secret in (graph.client_secret, graph.certificate_password):
        if secret is not None:
            values.append(secret.get_secret_value())
    for path in (graph.token_file, graph.federated_token_file):
        # Tokens in files are read again on every request; mask the one there now.
        # An unreadable file is reported by the credential when it is used.
        if path is not None:
            with contextlib.suppress(OSError, UnicodeDecodeError):
                values.append(path.read_text(encoding="utf-8").strip())
    from sqlalchemy.engine import make_url

    password = make_url(config.state.url).password
    if password:
        values.append(str(password))
    return values


def _load(config_path: Path | None) -> Config:
    from syncagent.config import load_config, resolve_config_path

    ctx = click.get_current_context().find_root()
    debug, verbose = bool(ctx.params.get("debug")), bool(ctx.params.get("verbose"))
    config = load_config(resolve_config_path(config_path))
    level = "debug" if debug or verbose else config.logging.level
    # --debug hears the libraries too; --verbose only syncagent; else the config decides.
    libraries = True if debug else (False if verbose else None)
    logs.configure(level, config.logging.format, _secrets(config), libraries=libraries)
    return config


@main.command(epilog=_SYNC_EXIT_CODES)
@config_option
@click.option(
    "--dry-run", is_flag=True, help="Show every request a sync would send; send only reads."
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the plan and result as one JSON document on stdout.",
)
@click.option(
    "--allow-deletions",
    is_flag=True,
    help="Let this run disable or delete more than safety.max_deletions objects.",
)
@handle_errors
def sync(config_path: Path | None, dry_run: bool, as_json: bool, allow_deletions: bool) -> None:
    """Run one sync cycle: read Graph, compare with state, apply over SCIM.

    With --dry-run, Graph and the SCIM endpoint are only read, the state database is
    not written, and every request a real run would send is shown as "(not sent)".
    """
    from syncagent.render import result_text
    from syncagent.runtime import open_runtime

    config = _load(config_path)
    with open_runtime(config) as runtime:
        result = runtime.sync(
            dry_run=dry_run, allow_deletions=allow_deletions, bodies=dry_run or as_json
        )
    if as_json:
        _emit(json.dumps(result.to_dict(), indent=2))
    else:
        _emit(result_text(result, show_requests=dry_run))
    _exit_for(result)


def _exit_for(result: CycleResult) -> NoReturn:
    from syncagent.cycle import RunStatus

    if result.status is RunStatus.SUCCESS:
        sys.exit(EXIT_OK)
    if result.status is RunStatus.PARTIAL:
        failed = len(result.report.failed) if result.report else 0
        _fail(
            f"partial: {failed} operation(s) failed; they are retried on the next run",
            EXIT_PARTIAL,
        )
    if result.error is not None and _debug():
        _print_traceback(result.error)
    code = EXIT_REFUSED if result.status is RunStatus.REFUSED else EXIT_FAILED
    _fail(f"{result.status}: {result.error or 'no reason given'}", code)


@main.command(epilog=_READ_EXIT_CODES)
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list on stdout.")
@click.option(
    "--live",
    is_flag=True,
    help="Read the roles Entra grants now from Graph, instead of what was applied.",
)
@handle_errors
def roles(config_path: Path | None, as_json: bool, live: bool) -> None:
    """List users with their SourceMagnet roles.

    By default, from the state database: what syncagent has applied. Nothing is sent to
    the SCIM endpoint either way.
    """
    from syncagent.render import roles_table
    from syncagent.roles import applied_roles, live_roles
    from syncagent.runtime import open_runtime

    config = _load(config_path)
    with open_runtime(config) as runtime:
        rows = live_roles(runtime.source) if live else applied_roles(runtime.store.load())
    if as_json:
        _emit(json.dumps([row.to_dict() for row in rows], indent=2))
    else:
        _emit(roles_table(rows))


_CHECK_EXIT_CODES = """\b
Exit codes:
  0  every check passed
  2  usage or configuration error
  4  a check failed: see its line
  70 internal error; 130 interrupted
"""


@main.command(epilog=_CHECK_EXIT_CODES)
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list on stdout.")
@handle_errors
def check(config_path: Path | None, as_json: bool) -> None:
    """Check the configuration, the state database, Graph and the SCIM endpoint.

    Sends only reads: the Graph group and member reads a sync makes, and the SCIM probe
    Entra's Test Connection sends (a query for a random userName). Each part is checked on
    its own, so one failure does not hide the others.
    """
    from syncagent.check import run_checks
    from syncagent.render import checks_table

    config = _load(config_path)
    checks = run_checks(config)
    if as_json:
        _emit(json.dumps([dataclasses.asdict(c) for c in checks], indent=2))
    else:
        _emit(checks_table(checks))
    failed = [c.name for c in checks if not c.ok]
    if failed:
        _fail(f"failed: {', '.join(failed)} (see above)", EXIT_FAILED)


@main.command(
    epilog="\b\nExit codes:\n  0  the demo ran to its end\n  70 internal error; 130 interrupted"
)
@click.option("--keep", is_flag=True, help="Keep the demo's state and config directory.")
@handle_errors
def demo(keep: bool) -> None:
    """Watch the agent work against a built-in sample tenant and SCIM server (offline).

    Needs no configuration and no network: a Graph emulator and a SCIM server run on
    this machine's loopback interface for the length of the demo.
    """
    from syncagent.demo import run_demo

    params = click.get_current_context().find_root().params
    level = "debug" if params.get("debug") or params.get("verbose") else "warning"
    run_demo(click.echo, keep=keep, log_level=level)


if __name__ == "__main__":  # pragma: no cover
    main()
