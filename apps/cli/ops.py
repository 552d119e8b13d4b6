"""``syndication status``, ``failures`` and ``channels``: see and steer the pipeline.

``status`` exits 1 when something needs attention, so it doubles as a health check::

    syndication status --json || page-someone
"""
from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.table import Table

from config import Settings
from apps.cli.output import console, errors, fail, print_json
from apps.cli.runtime import Runtime
from syndication.errors import NotFound, ValidationError
from syndication.operations import Done, discard_delivery, pause, resume, retry_all, retry_delivery
from syndication.publishing import utcnow
from syndication.channels.registry import channel_names
from syndication.status import Status, collect_status, failure_json
from syndication.store.deliveries import list_deliveries
from workers.app import create_app as create_celery
from workers.broker import BrokerState, client_for
from workers.inspect import broker_snapshot

failures_app = typer.Typer(help="See, retry and discard failed deliveries.", no_args_is_help=True)
channels_app = typer.Typer(help="Pause and resume social channels.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
ChannelOpt = Annotated[str | None, typer.Option("--channel", help="Only this channel.")]


def os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # a container user without a passwd entry
        return "unknown"


ActorOpt = Annotated[str | None, typer.Option("--actor", show_default="the OS user",
                                              help="Who is acting, for the ops log.")]


def broker_url(settings: Settings) -> str | None:
    """SYNDICATION_BROKER_URL, else the embedded redis-server `syndication run` started, else None."""
    if settings.broker_url:
        return settings.broker_url
    sock = settings.resolved_data_dir / "redis" / "redis.sock"
    return f"redis+socket://{sock}" if sock.exists() else None


def _snapshot(settings: Settings) -> tuple[dict[str, int] | None, list[str] | None]:
    url = broker_url(settings)
    if url is None:
        return None, None
    celery = create_celery(settings.model_copy(update={"broker_url": url}))
    return broker_snapshot(celery, BrokerState(client_for(url)))


def _channel_names(rt: Runtime) -> list[str]:
    return channel_names(rt.site, rt.settings)


def _print_status(status: Status) -> None:
    data = status.as_json()
    top = Table("queue", "waiting", title="Queues")
    for name, depth in (data["queues"] or {}).items():
        top.add_row(name, str(depth))
    if data["queues"] is None:
        top.add_row("[red]broker unreachable[/red]", "-")
    console.print(top)
    workers = data["workers"]
    console.print(f"Workers online: {', '.join(workers) if workers else ('[red]unknown[/red]' if workers is None else '[red]none[/red]')}")
    outbox = data["outbox"]
    console.print(f"Outbox: {outbox['pending']} unprocessed, oldest {outbox['lag_s']:.0f} s old"
                  if outbox["pending"] else "Outbox: every event processed")
    scheduled = data["scheduled"]
    if scheduled["count"]:
        soonest = scheduled["upcoming"][0]
        console.print(f"Scheduled: {scheduled['count']} article(s); next {soonest['article_id']} at "
                      f"{soonest['release_at']} (in {soonest['in_s']:.0f} s)", highlight=False)
    channels = Table("channel", "state", "until", "reason", "budget left", title="Channels")
    for c in data["channels"]:
        state = "[yellow]paused[/yellow]" if c["state"] == "paused" else "[green]active[/green]"
        budget = c["budget"]
        channels.add_row(c["name"], state, c["paused_until"] or "-", c["reason"] or "-",
                         f"{budget['left']}/{budget['posts_per_window']} per {budget['window_s']} s")
    console.print(channels)
    feeds = Table("feed", "items", "renders", "last render", "stale", title="Feeds")
    for f in data["feeds"]:
        feeds.add_row(f["feed"], str(f["items"]), str(f["renders"]), f["rendered_at"] or "never",
                      f"[yellow]{f['stale_s']:.0f} s[/yellow]" if f["stale"] else "no")
    console.print(feeds)
    if data["hubs"]:
        hubs = Table("hub", "state", "owed", "sent", "failed", "last error", title="WebSub hubs")
        for h in data["hubs"]:
            hubs.add_row(h["hub"], "[red]failing[/red]" if h["state"] == "failing" else "[green]ok[/green]",
                         str(h["pending"]), str(h["sent"]), str(h["failed"]), h["last_error"] or "-")
        console.print(hubs)
    _print_failures(data["failures"]["recent"], title=f"Failed deliveries ({data['failures']['count']})")
    for problem in status.problems:
        console.print(f"[red]problem:[/red] {problem}", highlight=False)
    if not status.problems:
        console.print("[green]no problems[/green]")


def _print_failures(rows: list[dict[str, object]], *, title: str) -> None:
    table = Table("id", "channel", "action", "article", "attempts", "error", title=title)
    for r in rows:
        table.add_row(str(r["id"]), str(r["channel"]), str(r["action"]), str(r["article_id"]), str(r["attempts"]),
                      str(r["error"] or "")[:80])
    console.print(table)


def status_command(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Queues, workers, outbox, channels, feeds and failures; exits 1 when something needs attention.

    >>> syndication status --json
    """
    rt: Runtime = ctx.obj
    queues, workers = _snapshot(rt.settings)
    status = collect_status(rt.store, rt.site, queues=queues, workers=workers, now=utcnow(),
                            channels=_channel_names(rt))
    if as_json:
        print_json(status.as_json())
        for problem in status.problems:  # stdout stays parseable JSON
            errors.print(f"problem: {problem}", highlight=False, markup=False)
    else:
        _print_status(status)
    if status.problems:
        raise typer.Exit(1)


def _report(done: Done, as_json: bool) -> None:
    if as_json:
        print_json({"action": done.action, "target": done.target, "message": done.message, "ids": list(done.ids)})
    else:
        console.print(done.message, highlight=False)


@failures_app.command("list")
def failures_list(ctx: typer.Context, channel: ChannelOpt = None, limit: int = 200, as_json: JsonOpt = False) -> None:
    """Failed deliveries, newest first."""
    rt: Runtime = ctx.obj
    with rt.store.read() as session:
        rows = [failure_json(d) for d in list_deliveries(session, state="failed", channel=channel, limit=limit)]
    if as_json:
        print_json(rows)
    else:
        _print_failures(rows, title=f"Failed deliveries ({len(rows)})")


@failures_app.command("retry")
def failures_retry(
    ctx: typer.Context,
    delivery_id: Annotated[int | None, typer.Argument(help="The delivery to retry.")] = None,
    all_failed: Annotated[bool, typer.Option("--all", help="Retry every failed delivery.")] = False,
    channel: ChannelOpt = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a failed delivery (or --all of them) pending again; the sweeper queues it within seconds."""
    rt: Runtime = ctx.obj
    if (delivery_id is None) == (not all_failed):
        fail("name one delivery ID or pass --all", 2)
    try:
        done = (retry_all(rt.store, actor or os_user(), channel) if all_failed
                else retry_delivery(rt.store, delivery_id, actor or os_user()))  # type: ignore[arg-type]
    except (NotFound, ValidationError) as exc:
        fail(str(exc))
    _report(done, as_json)


@failures_app.command("discard")
def failures_discard(ctx: typer.Context, delivery_id: int, actor: ActorOpt = None, as_json: JsonOpt = False) -> None:
    """Give up on a failed (or pending) delivery."""
    rt: Runtime = ctx.obj
    try:
        done = discard_delivery(rt.store, delivery_id, actor or os_user())
    except (NotFound, ValidationError) as exc:
        fail(str(exc))
    _report(done, as_json)


@channels_app.command("pause")
def channels_pause(
    ctx: typer.Context,
    channel: str,
    reason: Annotated[str, typer.Option("--reason", help="Why, for the other operators.")] = "",
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Stop posting to a channel until it is resumed; its deliveries wait."""
    rt: Runtime = ctx.obj
    try:
        done = pause(rt.store, channel, actor or os_user(), reason, known=_channel_names(rt))
    except NotFound as exc:
        fail(str(exc))
    _report(done, as_json)


@channels_app.command("resume")
def channels_resume(ctx: typer.Context, channel: str, actor: ActorOpt = None, as_json: JsonOpt = False) -> None:
    """Resume a paused channel; the deliveries it held back go out."""
    rt: Runtime = ctx.obj
    try:
        done = resume(rt.store, channel, actor or os_user(), known=_channel_names(rt))
    except NotFound as exc:
        fail(str(exc))
    _report(done, as_json)
