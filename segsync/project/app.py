"""What ``segsync check|plan|sync|jobs`` do, between argument parsing and the engine.

Each function loads the project, runs the work for every selected platform, prints a plain
report to stdout (progress to stderr) and returns the exit status.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from segsync.errors import ConfigError, SegsyncError, SyncPaused
from segsync.plugins.manager import Hooks, build_registry, make_plugin_manager
from segsync.plugins.registry import Registry
from segsync.project.config import CONFIG_NAME, ProjectConfig, effective_as_of, load_config
from segsync.project.output import Progress, human_duration

if TYPE_CHECKING:
    from segsync.core.lint import Finding
    from segsync.core.segments import SegmentPack
    from segsync.sync.engine import Progress as SyncProgress
    from segsync.sync.engine import SyncResult, SyncSpec


def find_config(path: Path | None) -> Path:
    target = path or Path.cwd() / CONFIG_NAME
    if not target.is_file():
        raise ConfigError(
            f"{target}: no such file; run `segsync init --platform <name>` first, or pass --config"
        )
    return target


def selected_platforms(config: ProjectConfig, chosen: Sequence[str] | None) -> list[str]:
    names = list(chosen or config.project.platforms)
    if not names:
        raise ConfigError(f"{config.path}: no [platforms.<name>] table; add one or run `segsync init`")
    return names


def as_of_date(config: ProjectConfig, given: dt.date | None, *, today: dt.date | None = None) -> dt.date:
    today = today or dt.date.today()
    as_of = given or effective_as_of(config, today)
    if abs((as_of - today).days) > 365:
        print(
            f"segsync: warning: scoring as of {as_of}, {abs((as_of - today).days)} days from today "
            "(fine for backtesting an export; check --as-of and [rfm] as_of otherwise)",
            file=sys.stderr,
        )
    return as_of


class Project:
    """A loaded segsync.toml with its plugin registry."""

    def __init__(self, config_path: Path | None, *, env: Mapping[str, str] | None = None) -> None:
        self.config = load_config(find_config(config_path))
        self.pm = make_plugin_manager()
        self.registry: Registry = build_registry(self.pm)
        self.hooks = Hooks(self.pm)
        self.env = os.environ if env is None else env

    @functools.cached_property
    def packs(self) -> list[SegmentPack]:
        """The project's segment packs, loaded once per command (lint, plan and sync share them)."""
        from segsync.project.packs import load_packs

        return load_packs(self.config, self.registry)

    def lint(self, packs: Sequence[SegmentPack]) -> list[Finding]:
        from segsync.core.lint import lint

        return lint(packs, self.registry, self.config.properties, bins=self.config.rfm.bins)

    def require_clean_rules(self) -> None:
        """Refuse to plan or write with a segment map the linter finds broken."""
        errors = [f for f in self.lint(self.packs) if f.level == "error"]
        if errors:
            more = f" (and {len(errors) - 1} more; see `segsync check`)" if len(errors) > 1 else ""
            raise ConfigError(f"{errors[0].where}: {errors[0].message}{more}; nothing was written")


# -- check ---------------------------------------------------------------------------------


def check(args: argparse.Namespace) -> int:
    from segsync.project.connect import platform_settings
    from segsync.project.run import project_spec

    project = Project(args.config)
    config, registry = project.config, project.registry
    packs = project.packs
    print(f"config: {config.path} ok; packs: {', '.join(p.name for p in packs)}")
    findings = project.lint(packs)
    errors = [f for f in findings if f.level == "error"]
    for f in findings:
        print(f"rules: {f.level}: {f.where}: {f.message}")
    if not findings:
        print("rules: no gaps, overlaps or unreachable segments")
    problems = len(errors)
    for name in selected_platforms(config, args.platform) if config.platforms or args.platform else ():
        settings = platform_settings(registry.platform(name), config, project.env)
        print(f"{name}: settings ok ({', '.join(sorted(settings.model_fields_set)) or 'all defaults'})")
    if not args.offline:
        spec = project_spec(config, packs, registry)
        for name in selected_platforms(config, args.platform):
            problems += _check_platform(project, name, spec)
    if problems:
        print(f"check found {problems} problem(s); nothing was written", file=sys.stderr)
        return 1
    print("check passed")
    return 0


def _check_platform(project: Project, name: str, spec: SyncSpec) -> int:
    from segsync.project.connect import connect
    from segsync.project.run import open_store, store_exists
    from segsync.sync.connect import account_key

    config = project.config
    platform = connect(config, name, registry=project.registry, env=project.env)
    problems = 0
    try:
        for note in platform.check():
            print(f"{name}: {note}")
        account = account_key(platform)
        print(f"{name}: account {account.partition(':')[2]}")
        remote = platform.inspect_fields(spec.fields)
        missing = []
        for field in spec.fields:
            found = remote.get(field.key)
            if found is None:
                missing.append(field.key)
                continue
            reason = platform.field_matches(field, found)
            if reason:
                problems += 1
                print(f"{name}: conflict: field {field.key}: {reason}; segsync will not overwrite it")
        if missing:
            print(f"{name}: {len(missing)} field(s) to create: {', '.join(missing)}")
        known: dict[str, tuple[str, str]] = {}
        if store_exists(config):
            with open_store(config, project.env) as store:
                known = store.remote_ids(name, account, "list")
        for lst in spec.lists:
            if lst.key in known:
                continue
            existing = platform.find_list(lst.name)
            if existing is not None:
                problems += 1
                print(
                    f"{name}: conflict: a list named {lst.name!r} already exists (id {existing.id}) and "
                    "segsync has no record of creating it; rename or delete it, or delete nothing and "
                    "let `segsync sync` take it over (its members will be replaced)"
                )
        print(f"{name}: credentials ok")
    finally:
        platform.close()
    return problems


# -- plan / sync ---------------------------------------------------------------------------


def _progress_printer(quiet: bool) -> tuple[Callable[[SyncProgress], None], Progress]:
    printer = Progress(quiet=quiet)

    def on_progress(event: SyncProgress) -> None:
        printer(event.phase, event.done, event.total)

    return on_progress, printer


def _sync(
    project: Project,
    name: str,
    args: argparse.Namespace,
    on_progress: Callable[[SyncProgress], None],
    *,
    dry_run: bool = False,
    full: bool = False,
    retry_failed: bool = False,
) -> SyncResult:
    from segsync.project.run import sync_project

    return sync_project(
        project.config,
        name,
        registry=project.registry,
        as_of=as_of_date(project.config, args.as_of),
        hooks=project.hooks,
        env=project.env,
        progress=on_progress,
        dry_run=dry_run,
        full=full,
        retry_failed=retry_failed,
        force_as_of=bool(getattr(args, "force_as_of", False)),
        packs=project.packs,
    )


def plan(args: argparse.Namespace) -> int:
    project = Project(args.config)
    project.require_clean_rules()
    on_progress, printer = _progress_printer(quiet=False)
    for name in selected_platforms(project.config, args.platform):
        try:
            result = _sync(project, name, args, on_progress, dry_run=True)
        except SyncPaused as paused:
            printer.done()
            _explain_paused_plan(project, name, paused)
            raise
        printer.done()
        print(f"== {name}: plan as of {result.report.job.as_of} (dry run, nothing written)")
        report = result.report
        print(
            f"pulled {report.contacts_text()}, {report.purchases_pulled} purchases; "
            f"{report.rejected} record(s) rejected; {report.calls} API call(s) spent reading"
        )
        if result.plan is not None:
            for line in result.plan.describe():
                print(f"  {line}")
    return 0


def sync(args: argparse.Namespace) -> int:
    project = Project(args.config)
    project.require_clean_rules()
    on_progress, printer = _progress_printer(quiet=args.quiet)
    status = 0
    for name in selected_platforms(project.config, args.platform):
        try:
            result = _sync(project, name, args, on_progress, full=args.full, retry_failed=args.retry_failed)
        except SegsyncError as err:
            printer.done()
            print(f"segsync: error: {err}", file=sys.stderr)
            status = status or err.exit_code
            continue
        printer.done()
        print(render_report(name, result.report))
    return status


def _explain_paused_plan(project: Project, name: str, paused: SyncPaused) -> None:
    """A dry run that spent a rate budget while pulling: say what that means for a first sync."""
    from segsync.project.connect import platform_settings
    from segsync.project.run import open_store

    cls = project.registry.platform(name)
    windows = cls.rate_buckets(platform_settings(cls, project.config, project.env)).values()
    longest = max((w.seconds for ws in windows for w in ws), default=0.0)
    with open_store(project.config, project.env) as store:
        jobs = store.recent_jobs(1, platform=name)
    spent = jobs[0].calls if jobs else 0
    print(
        f"== {name}: the dry run spent the account's rate budget while pulling ({spent} calls).\n"
        f"  A first full sync of this account takes more than {human_duration(longest)}: "
        "pulling alone outlasts one budget window.\n"
        "  A plan keeps nothing it pulls (it never writes the state a sync owns), so it cannot get "
        "further: run `segsync sync`, which saves its pull as it goes and resumes it "
        f"(the budget is back in {human_duration(paused.resume_after)}), then plan again."
    )


def render_report(name: str, report: object) -> str:
    from segsync.core.report import SyncReport

    assert isinstance(report, SyncReport)
    r = report
    lines = [
        f"== {name}: job {r.job.job_id} {r.status} (as of {r.job.as_of})",
        f"  pulled {r.contacts_text()} and {r.purchases_pulled} purchases; {r.rejected} rejected",
        f"  created {r.fields_created} field(s), {r.lists_created} list(s)",
        f"  wrote {r.contacts_written} contact(s); list members +{r.members_added} -{r.members_removed}",
        f"  {r.calls} API calls ({r.write_calls} writes), {r.retries} retries, {r.rate_limited} rate-limited",
    ]
    if r.failed_records:
        lines.append(
            f"  {r.failed_records} record(s) failed and will be retried next run (see `segsync jobs`)"
        )
    return "\n".join(lines)


__all__ = ["check", "plan", "render_report", "sync"]
