"""Wiring: build the adapters a cycle needs from a loaded configuration."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from syncagent.apply import RequestLog
from syncagent.config import Config
from syncagent.cycle import CycleOptions, CycleResult, run_cycle
from syncagent.ports import DirectorySource
from syncagent.scim.client import ScimClient
from syncagent.state import StateStore


@dataclass(slots=True)
class Runtime:
    config: Config
    store: StateStore
    target: ScimClient
    requests: RequestLog
    _stack: ExitStack
    _source: DirectorySource | None = None

    @property
    def source(self) -> DirectorySource:
        """The Graph source, built on first use: reading state alone needs no Graph."""
        if self._source is None:
            from syncagent.graph import GraphSource  # the SDK import is heavy

            source = GraphSource.from_config(self.config.graph, self.config.source)
            self._stack.callback(source.close)
            self._source = source
        return self._source

    def options(self, *, dry_run: bool, allow_deletions: bool) -> CycleOptions:
        return CycleOptions(
            dry_run=dry_run,
            allow_deletions=allow_deletions,
            max_deletions=self.config.safety.max_deletions,
            skip_out_of_scope_deletions=self.config.safety.skip_out_of_scope_deletions,
            members_per_patch=self.config.scim.members_per_patch,
            concurrency=self.config.scim.concurrency,
            dialect=self.config.scim.dialect,
        )

    def sync(
        self, *, dry_run: bool = False, allow_deletions: bool = False, bodies: bool = True
    ) -> CycleResult:
        """One cycle. `bodies=False` keeps request bodies out of the result (and memory)."""
        self.requests.entries.clear()
        self.requests.keep_bodies = bodies
        options = self.options(dry_run=dry_run, allow_deletions=allow_deletions)
        if dry_run:  # reads only: no need to wait for, or keep out, a running sync
            return run_cycle(self.source, self.target, self.store, self.requests, options)
        with self.store.exclusive_run():
            return run_cycle(self.source, self.target, self.store, self.requests, options)


@contextmanager
def open_runtime(config: Config) -> Iterator[Runtime]:
    with ExitStack() as stack:
        store = StateStore.open(config.state.url)
        stack.callback(store.close)
        requests = RequestLog()
        scim = config.scim
        target = ScimClient(
            scim.base_url,
            scim.secret,
            timeout=scim.timeout_seconds,
            max_retries=scim.max_retries,
            verify=str(scim.ca_file) if scim.ca_file else True,
            on_request=requests,
        )
        stack.callback(target.close)
        yield Runtime(config, store, target, requests, stack)
