"""The ``segsync`` command line.

Every command runs non-interactively (no prompts: CI and cron have no stdin). segsync errors
are printed as one line without a traceback; the exit status is 0 only on success, 2 for bad
input, 75 when a rate budget paused a sync (run it again later), 1 otherwise. ``watch`` and
``serve`` run until SIGTERM and then exit 0 (see segsync.project.daemon).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segsync import __version__
from segsync.errors import ConfigError, SegsyncError

if TYPE_CHECKING:
    from segsync.plugins.registry import Registry

CONFIG_NAME = "segsync.toml"

log = logging.getLogger("segsync")


def _today() -> dt.date:
    return dt.date.today()


Add = Callable[[str, str, Callable[[argparse.Namespace], int]], argparse.ArgumentParser]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segsync",
        description="Customer segments and RFM scores, computed from your CRM and written back into it.",
    )
    parser.add_argument("--version", action="version", version=f"segsync {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, help_text: str, fn: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=fn)
        return p

    _project_commands(add)
    _daemon_commands(add)
    _score_command(add)
    _history_commands(add)
    add("plugins", "list installed plugins and the platforms they provide", cmd_plugins)
    _sandbox_command(add)
    p = add("demo", "the whole loop on a local sandbox CRM, no account needed", cmd_demo)
    p.add_argument("--platform", default="hubspot", help="hubspot (default) or brevo")
    p.add_argument("--contacts", type=int, default=3000, help="size of the demo store (default 3000)")
    p.add_argument("--dir", type=Path, default=None, help="keep the demo project here (default: a temp dir)")
    return parser


def _project_opts(p: argparse.ArgumentParser, *, platform: bool = True, as_of: bool = True) -> None:
    p.add_argument(
        "-c", "--config", type=Path, default=None, help=f"path to {CONFIG_NAME} (default: ./{CONFIG_NAME})"
    )
    if platform:
        p.add_argument("-p", "--platform", action="append", help="platform to use (repeatable; default: all)")
    if as_of:
        p.add_argument("--as-of", type=dt.date.fromisoformat, default=None, help="reference date YYYY-MM-DD")
        p.add_argument(
            "--force-as-of",
            action="store_true",
            help="score a reference date before the account's first purchase anyway",
        )


def _project_commands(add: Add) -> None:
    p = add("init", f"write a commented {CONFIG_NAME} with the standard RFM pack", cmd_init)
    p.add_argument("--platform", required=True, help="hubspot, brevo, ... (see `segsync plugins`)")
    p.add_argument("--force", action="store_true", help=f"overwrite an existing {CONFIG_NAME}")
    p = add("check", "validate config and segment rules, credentials, scopes and CRM conflicts", cmd_check)
    _project_opts(p)
    p.add_argument("--offline", action="store_true", help="check config and rules only, call no CRM")
    p = add("plan", "dry run: what a sync would change and what it costs in API calls", cmd_plan)
    _project_opts(p)
    p = add("sync", "apply: create fields and lists, write values and memberships (resumable)", cmd_sync)
    _project_opts(p)
    p.add_argument(
        "--full",
        action="store_true",
        help="ignore the purchase cursor (and drop an unfinished pull): pull and compare everything",
    )
    p.add_argument(
        "--retry-failed", action="store_true", help="retry records that failed too often and were parked"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def _daemon_commands(add: Add) -> None:
    p = add("watch", "incremental syncs on an interval until SIGTERM (one at a time)", cmd_watch)
    _project_opts(p, as_of=False)
    p.add_argument("--every", default="5m", help="time between syncs: 30s, 5m, 1h... (default 5m)")
    p = add("serve", "receive CRM webhooks and sync soon after each change (until SIGTERM)", cmd_serve)
    _project_opts(p, as_of=False)
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 in a container)"
    )
    p.add_argument(
        "--public-url",
        default=None,
        help="scheme and host the CRM posts to, e.g. https://hooks.example.com (HubSpot signs the full "
        "URL; default: the request's Host header)",
    )
    p.add_argument(
        "--every",
        default="15m",
        help="also sync on this interval, for changes no webhook reports "
        "(Brevo's deals); 0 or off: never (default 15m)",
    )
    p.add_argument(
        "--debounce", default="2s", help="quiet time before a sync, to coalesce a burst (default 2s)"
    )
    p.add_argument("--threads", type=int, default=4, help="request threads (default 4)")


def _score_command(add: Add) -> None:
    p = add("score", "RFM scores and segments of an export file (CSV or parquet), no CRM needed", cmd_score)
    p.add_argument("purchases", type=Path, help="columns contact_id, purchased_at, amount[, currency]")
    p.add_argument("--contacts", type=Path, default=None, help="contact_id and properties the rules read")
    p.add_argument("--out", type=Path, required=True, help="result file: .csv or .parquet")
    p.add_argument(
        "-c",
        "--config",
        type=Path,
        default=None,
        help=f"{CONFIG_NAME} for [rfm] and packs (default: ./, if any)",
    )
    p.add_argument("--as-of", type=dt.date.fromisoformat, default=None, help="reference date YYYY-MM-DD")


def _history_commands(add: Add) -> None:
    p = add("jobs", "recent sync jobs, and records waiting for retry", cmd_jobs)
    _project_opts(p, platform=False, as_of=False)
    p.add_argument("-n", "--limit", type=int, default=10, help="how many jobs (default 10)")
    p.add_argument("--rejections", action="store_true", help="also list the latest sync's rejected records")
    jobs_sub = p.add_subparsers(dest="jobs_command", metavar="show N")
    show = jobs_sub.add_parser("show", help="one job whole: counts, error, rejections")
    show.add_argument("job", type=int, help="job number (the first column of `segsync jobs`)")
    # Also after `show` (SUPPRESS: a -c given before `show` is not reset to the default).
    show.add_argument("-c", "--config", type=Path, default=argparse.SUPPRESS, help=f"path to {CONFIG_NAME}")
    p = add("unlock", "take over a lock left by a job on another host or container", cmd_unlock)
    _project_opts(p, as_of=False)


def _sandbox_command(add: Add) -> None:
    p = add("sandbox", "run a platform's loopback API emulator in the foreground", cmd_sandbox)
    p.add_argument("platform", help="hubspot or brevo (any installed platform with a sandbox)")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    p.add_argument("--token", "--api-key", dest="secret", default=None, help="the credential it accepts")
    p.add_argument(
        "--account-id", default=None, help="the account id it reports (default: derived from the token)"
    )
    seed = p.add_mutually_exclusive_group()
    seed.add_argument("--seed", choices=["demo", "empty"], default="empty", help="demo: a realistic store")
    seed.add_argument(
        "--seed-from",
        type=Path,
        default=None,
        help="folder with contacts.csv and purchases.csv (format: docs/sandbox-seeds.md)",
    )
    p.add_argument(
        "--keep-orphans",
        action="store_true",
        help="with --seed-from: keep deals whose contact_id is not in contacts.csv, with no contact",
    )
    p.add_argument("--contacts", type=int, default=3000, help="demo store size (default 3000)")
    p.add_argument("--traffic-log", type=Path, default=None, help="write every exchange as JSON Lines")
    p.add_argument(
        "--faults", default=None, help="fault plan, e.g. 429=0.1,503=0.05,lost_response=0.02,seed=1"
    )
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a keyword of the platform's sandbox (repeatable), e.g. honour_deal_sort=false, "
        "search_cap=10000",
    )
    p.add_argument(
        "--plan",
        default=None,
        help="the vendor plan whose rate limits it enforces (HubSpot: free, starter, professional, "
        "enterprise; Brevo: general, advanced, extended); an --option of the same keyword wins",
    )


# -- commands ------------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    from segsync.project.config import default_config_text

    registry = _registry()
    cls = registry.platform(args.platform)
    target = Path.cwd() / CONFIG_NAME
    if target.exists() and not args.force:
        raise ConfigError(f"{target} already exists; use --force to overwrite it")
    text = default_config_text(cls.name, secret_env=cls.secret_env, settings=cls.Settings)
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}")
    print(f"next: export {cls.secret_env}=...   then: segsync check")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from segsync.plugins.manager import build_registry, list_plugins, make_plugin_manager
    from segsync.project.output import table

    pm = make_plugin_manager()
    registry = build_registry(pm)
    rows = []
    for info in list_plugins(pm):
        provides = [
            n for (kind, n), owner in registry.owners.items() if owner == info.name and kind == "platform"
        ]
        rows.append((info.name, info.distribution or "-", info.version or "-", ", ".join(provides) or "-"))
    if not rows:
        print("no platform plugins installed; try: pip install segsync-hubspot")
        return 0
    print(table(["plugin", "distribution", "version", "platforms"], rows))
    return 0


def _plan_options(sandbox_cls: Any, plan: str | None) -> dict[str, Any]:
    """``--plan NAME`` as the sandbox's keywords (its ``plans``)."""
    if plan is None:
        return {}
    plans = getattr(sandbox_cls, "plans", None) or {}
    if plan not in plans:
        known = ", ".join(plans) or "none: this sandbox has no plans"
        raise ConfigError(f"--plan {plan!r}: the {sandbox_cls.platform} sandbox knows {known}")
    return dict(plans[plan])


def _sandbox_options(sandbox_cls: Any, raw: list[str]) -> dict[str, Any]:
    """``--option KEY=VALUE`` as the sandbox's keywords: true/false, numbers, else text."""
    import inspect

    taken = {"secret", "port", "traffic_log", "faults", "account_id", "clock", "wall_clock"}
    known = [n for n in inspect.signature(sandbox_cls).parameters if n not in taken]
    out: dict[str, Any] = {}
    for item in raw:
        key, sep, text = item.partition("=")
        if not sep or key not in known:
            raise ConfigError(f"--option {item!r}: expected KEY=VALUE with KEY one of {', '.join(known)}")
        value: Any = text
        if text.lower() in ("true", "false"):
            value = text.lower() == "true"
        else:
            for kind in (int, float):
                try:
                    value = kind(text)
                    break
                except ValueError:
                    continue
        out[key] = value
    return out


def cmd_sandbox(args: argparse.Namespace) -> int:
    from segsync.sandbox import FaultPlan, demo_dataset, load_seed_dir

    registry = _registry()
    cls = registry.platform(args.platform)
    sandbox_cls = cls.sandbox()
    if sandbox_cls is None:
        raise ConfigError(f"platform {cls.name!r} ships no sandbox")
    secret = args.secret or os.environ.get(cls.secret_env)
    if not secret:
        raise ConfigError(f"give the credential the sandbox accepts with --token (or set {cls.secret_env})")
    try:
        faults = FaultPlan.parse_cli(args.faults) if args.faults else None
    except ValueError as exc:
        raise ConfigError(f"--faults: {exc}") from None
    if args.keep_orphans and args.seed_from is None:
        raise ConfigError("--keep-orphans applies to --seed-from DIR only; add --seed-from or drop it")
    data = None
    if args.seed_from is not None:
        # Every problem of the folder at once, the platform's id rules included, before any port is
        # taken; a sandbox written before Sandbox.seed_rules gets the format's checks only.
        rules = getattr(sandbox_cls, "seed_rules", None)
        data = load_seed_dir(args.seed_from, keep_orphans=args.keep_orphans, rules=rules)
    elif args.seed == "demo":
        data = demo_dataset(_today(), contacts=args.contacts)
    options = {**_plan_options(sandbox_cls, args.plan), **_sandbox_options(sandbox_cls, args.option)}
    try:
        sandbox = sandbox_cls(
            secret=secret,
            port=args.port,
            traffic_log=args.traffic_log,
            faults=faults,
            account_id=args.account_id,
            **options,
        )
    except ValueError as exc:  # the sandbox's own words on a value it cannot hold
        raise ConfigError(f"{'--option' if options else '--account-id'}: {exc}") from None
    if data is not None:
        sandbox.seed(data)
    try:
        sandbox.start()
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror}; pick another --port"
        ) from None
    print(f"{cls.display_name} sandbox listening on {sandbox.base_url}", flush=True)
    print(f"point segsync at it: export SEGSYNC_{cls.name.upper()}_BASE_URL={sandbox.base_url}", flush=True)
    print("stop with Ctrl-C", flush=True)
    sandbox.server.serve_forever()
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from segsync.project.daemon import watch

    return watch(args)


def cmd_serve(args: argparse.Namespace) -> int:
    from segsync.project.daemon import serve

    return serve(args)


def cmd_score(args: argparse.Namespace) -> int:
    from segsync.project.score import command

    return command(args, _today())


def cmd_check(args: argparse.Namespace) -> int:
    from segsync.project.app import check

    return check(args)


def cmd_plan(args: argparse.Namespace) -> int:
    from segsync.project.app import plan

    return plan(args)


def cmd_sync(args: argparse.Namespace) -> int:
    from segsync.project.app import sync

    return sync(args)


def cmd_jobs(args: argparse.Namespace) -> int:
    from segsync.project.history import jobs

    return jobs(args)


def cmd_unlock(args: argparse.Namespace) -> int:
    from segsync.project.history import unlock

    return unlock(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from segsync.project.demo import run_demo

    return run_demo(platform=args.platform, contacts=args.contacts, folder=args.dir, as_of=_today())


# -- plumbing ------------------------------------------------------------------------------


def _registry() -> Registry:
    from segsync.plugins.manager import build_registry, make_plugin_manager

    return build_registry(make_plugin_manager())


def _our_roots() -> tuple[str, ...]:
    """Folders of segsync and of its loaded plugin packages (``segsync_*``)."""
    roots = []
    for name, module in list(sys.modules.items()):
        if "." not in name and (name == "segsync" or name.startswith("segsync_")):
            path = getattr(module, "__file__", None)
            if path:
                roots.append(str(Path(path).resolve().parent) + os.sep)
    return tuple(roots)


def print_frames(exc: BaseException) -> None:
    """``-vv``: where an unexpected exception was raised, in segsync's and its plugins' own code.

    No exception text and no chained exception is printed, at any verbosity: SDK exceptions
    carry HTTP headers and CRM bodies (tokens' echoes, contact PII), and so may anything raised
    while one was being handled. Frames of the SDKs and libraries are left out too.
    """
    roots = _our_roots()
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if str(Path(f.filename).resolve()).startswith(roots)
    ]
    print("Traceback (segsync's frames; exception texts withheld, they may hold CRM data):", file=sys.stderr)
    for line in traceback.StackSummary.from_list(frames).format():
        print(line, end="", file=sys.stderr)
    print(type(exc).__name__, file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # HTTP libraries log request URLs, which can hold e-mail addresses (PII): keep them quiet.
    for noisy in ("httpx", "httpcore", "urllib3", "hubspot", "brevo"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.func(args))
    except SegsyncError as err:
        print(f"segsync: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(
            "segsync: interrupted; progress is saved, run the same command again to resume", file=sys.stderr
        )
        return 130
    except Exception as exc:
        # Only the type: an unexpected exception's text may carry SDK bodies (PII) or headers.
        if args.verbose >= 2:
            print_frames(exc)
        print(
            f"segsync: internal error ({type(exc).__name__}); "
            + (
                "report it with the frames above"
                if args.verbose >= 2
                else "run again with -vv for where it failed"
            ),
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
