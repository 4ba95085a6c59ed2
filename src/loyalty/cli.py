"""The ``loyalty`` command line."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from loyalty.settings import Settings, SettingsRefused, load_settings

app = typer.Typer(help="Membership and loyalty platform.", no_args_is_help=True)

T = TypeVar("T")

#: Exit status of a refused configuration (sysexits' EX_CONFIG).
EXIT_CONFIG = 78


def get_settings() -> Settings:
    """The process settings, or a one-line refusal on stderr and exit status 78.

    The reason names the variable and what is wrong, never the value it was given.
    """
    try:
        return load_settings()
    except SettingsRefused as refused:
        typer.echo(f"loyalty: refusing to start: {refused}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None


def _with_db(settings: Settings, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` with the ORM initialised on ``settings.database_url``."""

    async def runner() -> T:
        from tortoise.context import TortoiseContext

        from loyalty import db, hooks

        hooks.load()
        async with TortoiseContext() as ctx:
            await ctx.init(config=db.config_from_settings(settings))
            try:
                return await work()
            finally:
                await ctx.close_connections()

    return asyncio.run(runner())


@app.command()
def migrate() -> None:
    """Apply pending database migrations."""
    from loyalty import db

    settings = get_settings()
    asyncio.run(db.migrate(settings.database_url, create_db=not settings.is_sqlite))
    typer.echo("migrations applied")


@app.command("export-schema")
def export_schema(
    output: Path = typer.Option(None, "--output", "-o", help="File to write (default: stdout)"),
) -> None:
    """Print the GraphQL schema (SDL); `loyalty export-schema -o schema.graphql` updates it."""
    from loyalty.graphql.schema import schema_sdl

    text = schema_sdl()
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}")


@app.command()
def seed(
    members: int = typer.Option(200, "--members", "-n", min=0, help="How many demo members"),
    seed_value: int = typer.Option(2026, "--seed", help="Random seed (same seed, same data)"),
) -> None:
    """Create realistic zh_CN demo data: members, identities, consents and orders."""
    from loyalty import seed as seeding

    settings = get_settings()
    result = _with_db(settings, lambda: seeding.run(members=members, seed=seed_value))
    typer.echo(f"seeded {result.members} members and {result.orders} orders")


@app.command("install-program")
def install_program() -> None:
    """Install the default loyalty program (idempotent): tier ladder, benefits, earning rules.

    A database set up by `loyalty migrate` alone has no tiers and no earning rules, so orders
    earn nothing until a program exists. Running it again changes nothing already there.
    """
    from loyalty import seed as seeding

    installed = _with_db(get_settings(), seeding.install_program)
    typer.echo(
        f"program installed: {installed.tiers} tiers, {installed.benefits} benefits, "
        f"{installed.earning_rules} earning rules"
    )


@app.command()
def serve(
    host: str = typer.Option(None, help="Bind address (default: LOYALTY_HOST)"),
    port: int = typer.Option(None, help="Port (default: LOYALTY_PORT)"),
    workers: int = typer.Option(1, min=1, help="uvicorn processes (one per core)"),
) -> None:
    """Run the API (production: PostgreSQL + Redis configured, workers run separately).

    /metrics covers every worker process: they share a metrics directory (prometheus-client's
    multiprocess mode), PROMETHEUS_MULTIPROC_DIR if set, else a temporary one removed on exit;
    either is emptied at start, so counters begin at zero with each start.
    """
    settings = get_settings()
    # Before anything imports prometheus_client: it picks its storage at import.
    metrics_dir, own_dir = _fresh_metrics_dir()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    # uvicorn stops gracefully on SIGTERM/SIGINT and then raises the signal again with the
    # handler it found: these make that a normal exit, so the directory is cleaned up.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    import uvicorn

    from loyalty.observability import uvicorn_log_config

    try:
        uvicorn.run(
            "loyalty.app:create_app",
            factory=True,
            host=host or settings.host,
            port=port or settings.port,
            workers=workers,
            proxy_headers=True,
            log_level=settings.log_level.lower(),
            log_config=uvicorn_log_config(settings),
            access_log=False,
        )
    finally:
        if own_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _fresh_metrics_dir() -> tuple[Path, bool]:
    """The multiprocess metrics directory, emptied; ``True`` when this process made it."""
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not configured:
        return Path(tempfile.mkdtemp(prefix="loyalty-metrics-")), True
    directory = Path(configured)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):  # a previous run's values
        stale.unlink()
    return directory, False


@app.command()
def worker() -> None:
    """Run the arq worker and the campaign scheduler (cron); SIGTERM/SIGINT stop it cleanly."""
    settings = get_settings()  # before the import: the worker module reads settings
    from loyalty.worker.settings import run_standalone

    asyncio.run(run_standalone(settings))


@app.command()
def dev(
    host: str = typer.Option("127.0.0.1", help="Bind address"),
    port: int = typer.Option(None, help="Port (default: LOYALTY_PORT)"),
    seed_members: int = typer.Option(200, help="Demo members to create when the DB is empty"),
) -> None:
    """Migrate, seed demo data if empty, and run API + worker + scheduler in one process."""
    import uvicorn
    from strawberry import relay

    from loyalty import db, redis_embedded
    from loyalty import seed as seeding
    from loyalty.app import create_app
    from loyalty.observability import uvicorn_log_config

    settings = get_settings()
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again with the
    # handler it found: with the default one SIGTERM kills the process before atexit and
    # leaves the embedded redis-server running. These turn both into a normal, clean exit.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    if settings.worker_in_process is None:
        # One command runs everything: the worker and its schedule live in this process.
        settings = settings.model_copy(update={"worker_in_process": True})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(db.migrate(settings.database_url, create_db=not settings.is_sqlite))
    demo = _with_db(settings, lambda: seeding.ensure_demo(members=seed_members, settings=settings))
    bind_port = port or settings.port
    base = f"http://{host}:{bind_port}"
    lines = [
        "",
        f"  GraphiQL      {base}/graphql",
        f"  Readiness     {base}/readyz",
        f"  Admin token   {demo.admin_token}",
        f"  Staff token   {demo.staff_token}",
        f"  Member token  {demo.member_token}",
        f"  Demo member   {relay.to_base64('Member', demo.member_id)}   (phone 138 1234 5678, "
        f"POS card {seeding.DEMO_POS_CARD}, mini-program code demo:{seeding.DEMO_OPENID})",
        "  Send tokens as the header  Authorization: Bearer <token>",
    ]
    if settings.wechat_dev_standin:
        lines += [
            f"  WeChat        stand-in at {base}/dev/wechat: loginWithMiniProgram code",
            "                demo:<openid>, bindPhoneNumber code phone:<digits>",
        ]
    typer.echo("\n".join([*lines, ""]))
    sys.stdout.flush()
    application = create_app(settings)
    config = uvicorn.Config(
        application,
        host=host,
        port=bind_port,
        log_level=settings.log_level.lower(),
        log_config=uvicorn_log_config(settings),
        access_log=False,
    )
    try:
        uvicorn.Server(config).run()
    finally:
        redis_embedded.stop_all()


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)


@app.command("create-admin-token")
def create_admin_token(
    subject: str = typer.Option("admin", help="Who the token names (audit log actor)"),
    role: str = typer.Option("ADMIN", help="ADMIN or STAFF"),
    scope: list[str] = typer.Option([], "--scope", help="Extra scope, e.g. pii (repeatable)"),
    ttl_minutes: int = typer.Option(60, min=1, max=7 * 24 * 60, help="Lifetime in minutes"),
) -> None:
    """Print a signed access token for an admin (or staff) caller, for bootstrapping."""
    from datetime import timedelta

    from loyalty.auth.principal import Principal, Role
    from loyalty.auth.tokens import issue_access_token

    if role.upper() not in (Role.ADMIN.value, Role.STAFF.value):
        raise typer.BadParameter("role must be ADMIN or STAFF", param_hint="--role")
    principal = Principal(role=Role(role.upper()), subject=subject, scopes=frozenset(scope))
    token = issue_access_token(get_settings(), principal, ttl=timedelta(minutes=ttl_minutes))
    typer.echo(token)


@app.command("create-api-key")
def create_api_key(
    name: str = typer.Option(..., help="What the key is for, e.g. 'POS Shanghai'"),
    channel: str = typer.Option(..., help="Channel the key records for, e.g. POS"),
    store: str = typer.Option(None, help="Store the key is bound to"),
    scope: list[str] = typer.Option([], "--scope", help="Extra scope, e.g. pii (repeatable)"),
) -> None:
    """Create a service API key and print it once (only its hash is stored)."""
    from loyalty.auth import service as auth
    from loyalty.auth.principal import Principal, Role
    from loyalty.errors import ValidationError
    from loyalty.members.models import Channel

    if channel.upper() not in Channel.__members__:
        raise typer.BadParameter(f"one of {', '.join(Channel.__members__)}", param_hint="--channel")
    actor = Principal(role=Role.ADMIN, subject="cli")
    try:
        issued = _with_db(
            get_settings(),
            lambda: auth.create_api_key(
                actor=actor, name=name, channel=channel.upper(), store_id=store, scopes=scope
            ),
        )
    except ValidationError as error:
        raise typer.BadParameter(error.message) from error
    typer.echo(f"id {issued.api_key.id}: send as `Authorization: ApiKey <key>`; shown once:")
    typer.echo(issued.secret)


@app.command("check-ledger")
def check_ledger() -> None:
    """Verify the points ledger for every member; print mismatches and exit 1 if any."""
    from loyalty.points.audit import check_ledger as run_check

    problems = _with_db(get_settings(), run_check)
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        typer.echo(f"{len(problems)} mismatch(es)", err=True)
        raise typer.Exit(1)
    typer.echo("ledger ok")


jobs_app = typer.Typer(help="See and drive the scheduled jobs.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")


@jobs_app.command("list")
def jobs_list(
    recent: int = typer.Option(10, min=0, max=100, help="How many recent runs to show"),
) -> None:
    """Schedules with their next run, and the recent runs with counts and failures."""
    from loyalty import jobruns

    settings = get_settings()

    async def work() -> tuple[list[jobruns.Schedule], list[Any]]:
        return jobruns.schedules(), await jobruns.recent_runs(limit=recent)

    schedules, runs = _with_db(settings, work)
    typer.echo("SCHEDULES")
    for item in schedules:
        batch = " (batch)" if item.batch else ""
        typer.echo(f"  {item.name:<28} {item.cron:<24} next {item.next_run.isoformat()}{batch}")
    typer.echo("RECENT RUNS")
    for run in runs:
        counts = " ".join(f"{k}={v}" for k, v in sorted(run.counts.items())) or "-"
        typer.echo(
            f"  #{run.id} {run.name} {run.period} {run.status.value} "
            f"chunks {run.chunks_done}/{run.chunks_total} {counts} "
            f"started {run.started_at.isoformat()}"
        )
        for error in run.errors[:5]:
            typer.echo(f"      member {error.get('member_id')}: {error.get('error')}")
    if not runs:
        typer.echo("  (none)")


@jobs_app.command("run")
def jobs_run(
    name: str = typer.Argument(..., help="A batch job, e.g. tiers_review or points_expire_due"),
    on_date: str = typer.Option(None, "--date", help="Business date YYYY-MM-DD (default today)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only count the members and chunks"),
    enqueue: bool = typer.Option(
        False, "--enqueue", help="Queue the chunks for the workers instead of running them here"
    ),
) -> None:
    """Run a batch job now for a business date, through the same code as its cron.

    By default the chunks run here, one after the other, and the command prints the finished
    run; with --enqueue they are queued for the workers and the command returns at once.
    """
    from datetime import date

    from loyalty import errors, fanout

    try:
        period = date.fromisoformat(on_date) if on_date else None
    except ValueError:
        raise typer.BadParameter("use YYYY-MM-DD", param_hint="--date") from None
    settings = get_settings()

    async def work() -> tuple[fanout.Launch, Any]:
        from loyalty import clock

        clock.configure(settings.business_timezone)
        launch = await fanout.start(
            name=name,
            period=period,
            chunk_size=settings.fanout_chunk_size,
            trigger="cli",
            dry_run=dry_run,
        )
        if dry_run or not launch.started:
            return launch, launch.run
        if enqueue:
            from arq.connections import create_pool

            from loyalty import redis_embedded
            from loyalty.jobs import QUEUE_NAME

            target = redis_embedded.resolve(settings.redis_url, settings.data_dir)
            redis = await create_pool(target.arq_settings(), default_queue_name=QUEUE_NAME)
            try:
                await fanout.dispatch(launch, redis)
            finally:
                await redis.aclose()
            return launch, launch.run
        return launch, await fanout.run_inline(launch)

    try:
        launch, run = _with_db(settings, work)
    except (errors.NotFoundError, errors.ValidationError) as error:
        raise typer.BadParameter(error.message) from error
    what = f"{name} for {launch.period.isoformat()}"
    if dry_run:
        typer.echo(f"dry run {what}: {launch.members} members in {len(launch.chunks)} chunks")
        return
    if not launch.started:
        typer.echo(f"run #{run.id} of {what} is still running")
        return
    if enqueue:
        typer.echo(f"run #{run.id} of {what}: {len(launch.chunks)} chunks queued")
        return
    counts = " ".join(f"{k}={v}" for k, v in sorted(run.counts.items())) or "nothing to do"
    typer.echo(f"run #{run.id} of {what}: {run.status.value} {counts}")
    for error in run.errors[:10]:
        typer.echo(f"  member {error.get('member_id')}: {error.get('error')}", err=True)
    if run.status.value != "SUCCEEDED":
        raise typer.Exit(1)


@jobs_app.command("retry")
def jobs_retry(
    name: str = typer.Argument(..., help="The batch job of the run, e.g. tiers_review"),
    on_date: str = typer.Option(
        None, "--date", help="Retry the latest run of this business date (default today)"
    ),
    run_id: int = typer.Option(None, "--run", min=1, help="Retry this run (instead of --date)"),
    enqueue: bool = typer.Option(
        False, "--enqueue", help="Queue the chunks for the workers instead of running them here"
    ),
) -> None:
    """Run the members that failed in a finished run again, as a new run of the same job and
    business date (its `retry_of` is the source run).

    By default the chunks run here and the command prints the new run (exit 1 when a member
    failed again); with --enqueue they are queued for the workers.
    """
    from datetime import date

    from loyalty import errors, fanout

    if on_date and run_id:
        raise typer.BadParameter("give --date or --run, not both", param_hint="--run")
    try:
        period = date.fromisoformat(on_date) if on_date else None
    except ValueError:
        raise typer.BadParameter("use YYYY-MM-DD", param_hint="--date") from None
    settings = get_settings()

    async def work() -> tuple[fanout.Launch, Any]:
        from loyalty import clock

        clock.configure(settings.business_timezone)
        launch = await fanout.retry(
            name=name,
            period=period,
            run_id=run_id,
            chunk_size=settings.fanout_chunk_size,
            trigger="cli",
        )
        if not launch.started:
            return launch, launch.run
        if enqueue:
            await _dispatch(settings, launch)
            return launch, launch.run
        return launch, await fanout.run_inline(launch)

    try:
        launch, run = _with_db(settings, work)
    except (errors.NotFoundError, errors.ValidationError) as error:
        raise typer.BadParameter(error.message) from error
    _report(name, launch, run, enqueue=enqueue, what="retry")


async def _dispatch(settings: Any, launch: Any) -> None:
    from arq.connections import create_pool

    from loyalty import fanout, redis_embedded
    from loyalty.jobs import QUEUE_NAME

    target = redis_embedded.resolve(settings.redis_url, settings.data_dir)
    redis = await create_pool(target.arq_settings(), default_queue_name=QUEUE_NAME)
    try:
        await fanout.dispatch(launch, redis)
    finally:
        await redis.aclose()


def _report(name: str, launch: Any, run: Any, *, enqueue: bool, what: str = "run") -> None:
    """Print a started (or still running) run the way `jobs run` does; exit 1 on failures."""
    of = f"{name} for {launch.period.isoformat()}"
    if not launch.started:
        typer.echo(f"run #{run.id} of {of} is still running")
        return
    label = f"{what} #{run.id}" + (f" of run #{run.retry_of}" if run.retry_of else "")
    if enqueue:
        typer.echo(f"{label}, {of}: {len(launch.chunks)} chunks queued")
        return
    counts = " ".join(f"{k}={v}" for k, v in sorted(run.counts.items())) or "nothing to do"
    typer.echo(f"{label}, {of}: {run.status.value} {counts}")
    for error in run.errors[:10]:
        typer.echo(f"  member {error.get('member_id')}: {error.get('error')}", err=True)
    if run.status.value != "SUCCEEDED":
        raise typer.Exit(1)


def main(argv: list[str] | None = None) -> Any:
    return app(argv)


if __name__ == "__main__":
    app()
