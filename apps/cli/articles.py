"""``syndication import``, ``render`` and ``articles``: the store and its feeds."""
from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from syndication.articles import Article
from apps.cli.output import console, errors, fail, print_json
from apps.cli.ops import os_user
from apps.cli.runtime import Runtime
from syndication.errors import NotFound, SyndicationError, ValidationError
from syndication.importing import Record, read_sources
from syndication.articles import parse_article
from syndication.publishing import publish, unpublish, utcnow
from syndication.channels.registry import channel_names
from syndication.operations import share_again
from syndication.refiling import refile_all
from syndication.rendering import render_all, render_feed
from syndication.store.articles import get_article, list_articles
from syndication.store.timeline import steps_of
from syndication.websub import backoff_from, deliver_pings

articles_app = typer.Typer(help="List, show and withdraw stored articles.", no_args_is_help=True)
BATCH = 500
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def import_command(
    ctx: typer.Context,
    paths: Annotated[list[str], typer.Argument(help="Files, folders, NDJSON files, or - for standard input.")],
    render: Annotated[bool, typer.Option(help="Render the affected feeds afterwards.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Load articles without announcing them: the backfill path. Imported articles are never posted.

    Each refused article is reported with its file and reason; the valid ones are still stored,
    and the command exits 1 if any was refused.
    """
    rt: Runtime = ctx.obj
    records = list(read_sources(paths))
    if not records:
        fail(f"{', '.join(paths)}: holds no articles (an empty file or folder); nothing was imported")
    refused: list[dict[str, str]] = []
    stored = 0
    batch: list[Article] = []
    dirty: set[str] = set()

    def flush() -> None:
        nonlocal stored
        if batch:
            outcome = publish(rt.store, rt.site, batch, origin="import")
            stored += len(outcome.accepted)
            dirty.update(outcome.feed_keys)
            batch.clear()

    with Progress(console=errors, disable=len(records) < 200 or as_json, transient=True) as progress:
        task = progress.add_task("importing", total=len(records))
        for record in records:
            progress.advance(task)
            if not isinstance(record, Record):
                refused.append({"where": record.where, "reason": record.reason})
                continue
            try:
                batch.append(parse_article(record.data, tz=rt.site.site.tz))
            except ValidationError as exc:
                refused.append({"where": record.where, "reason": str(exc)})
            if len(batch) >= BATCH:
                flush()
        flush()
    rendered = 0
    if render and dirty:
        for key in sorted(dirty):
            render_feed(rt.store, rt.site, rt.feeds_dir, key, clock=utcnow)
            rendered += 1
        _ping_hubs(rt)
    if as_json:
        print_json({"stored": stored, "refused": refused, "feeds_rendered": rendered})
    else:
        for item in refused:
            errors.print(f"[red]refused[/red] {item['where']}: {item['reason']}", highlight=False, soft_wrap=True)
        console.print(f"stored {stored} article(s), refused {len(refused)}, rendered {rendered} feed(s)")
    if refused:
        raise typer.Exit(1)


def render_command(
    ctx: typer.Context,
    feed: Annotated[str | None, typer.Argument(help="A feed key: all, section/<slug>, author/<slug>, tag/<slug>.")] = None,
    all_feeds: Annotated[bool, typer.Option("--all", help="Render every feed.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Render feeds now, in every format.

    With ``--all``, every article is first filed again under the site's ``[feeds]`` (after a
    change there), and the files of feeds that no longer exist are deleted.
    """
    rt: Runtime = ctx.obj
    if not feed and not all_feeds:
        fail("name a FEED or pass --all", 2)
    refiled = None
    try:
        if all_feeds:
            refiled = refile_all(rt.store, rt.site, rt.feeds_dir, clock=utcnow)
        results = (render_all(rt.store, rt.site, rt.feeds_dir, clock=utcnow) if all_feeds
                   else [render_feed(rt.store, rt.site, rt.feeds_dir, feed or "all", clock=utcnow)])
    except SyndicationError as exc:
        fail(str(exc), 2)
    if refiled is not None:
        # On stderr, so that --json's standard output stays the list of feeds scripts read.
        errors.print(f"re-filed {refiled.articles} article(s) under [feeds] ({refiled.added} feed "
                     f"membership(s) added, {refiled.removed} removed); deleted the files of "
                     f"{len(refiled.gone)} feed(s) that no longer exist" +
                     (f": {', '.join(refiled.gone)}" if refiled.gone else ""), highlight=False, soft_wrap=True)
    _ping_hubs(rt)
    if as_json:
        print_json([{"feed": r.feed_key, "items": r.item_count, "changed": r.changed} for r in results])
        return
    table = Table("feed", "items", "files changed")
    for r in results:
        table.add_row(r.feed_key, str(r.item_count), ", ".join(r.changed) or "-")
    console.print(table)


def _ping_hubs(rt: Runtime) -> None:
    """Send the hub pings the renders owe now; what fails stays owed, for the workers' sweeper."""
    if rt.site.site.hubs:
        deliver_pings(rt.store, clock=utcnow, backoff=backoff_from(rt.settings))


def _summary(stored) -> dict[str, object]:  # type: ignore[no-untyped-def]
    a = stored.article
    return {"id": a.id, "title": a.title, "url": a.url, "published_at": a.published_at.isoformat(),
            "section": a.section, "revision": stored.revision, "status": stored.status, "origin": stored.origin}


@articles_app.command("list")
def list_command(ctx: typer.Context, limit: int = 50, status: str | None = None, as_json: JsonOpt = False) -> None:
    """The newest stored articles."""
    rt: Runtime = ctx.obj
    with rt.store.read() as session:
        rows = [_summary(s) for s in list_articles(session, limit=limit, status=status)]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "published", "rev", "status", "title")
    for r in rows:
        table.add_row(str(r["id"]), str(r["published_at"])[:16], str(r["revision"]), str(r["status"]),
                      str(r["title"])[:60])
    console.print(table)


@articles_app.command("show")
def show_command(ctx: typer.Context, article_id: str, as_json: JsonOpt = False) -> None:
    """One article, with its timeline."""
    rt: Runtime = ctx.obj
    with rt.store.read() as session:
        stored = get_article(session, article_id)
        if stored is None:
            fail(f"no article with id {article_id!r}")
        steps = [{"at": s.at.isoformat(), "kind": s.kind, **s.detail} for s in steps_of(session, article_id)]
    data = {**_summary(stored), "article": stored.article.model_dump(mode="json"), "timeline": steps}
    if as_json:
        print_json(data)
        return
    console.print(f"[bold]{stored.article.title}[/bold]  ({stored.status}, revision {stored.revision})")
    console.print(stored.article.url)
    for step in steps:
        console.print(f"  {step['at'][:19]}  {step['kind']}  " +
                      " ".join(f"{k}={v}" for k, v in step.items() if k not in ("at", "kind")), highlight=False)


@articles_app.command("unpublish")
def unpublish_command(ctx: typer.Context, article_id: str, as_json: JsonOpt = False) -> None:
    """Withdraw an article: it leaves its feeds and its social posts are deleted."""
    rt: Runtime = ctx.obj
    try:
        outcome = unpublish(rt.store, article_id)
    except NotFound as exc:
        fail(str(exc))
    for key in sorted(outcome.feed_keys | {"all"}):
        render_feed(rt.store, rt.site, rt.feeds_dir, key, clock=utcnow)
    _ping_hubs(rt)
    if as_json:
        print_json({"id": article_id, "status": outcome.accepted[0].status, "events": [e.id for e in outcome.events]})
    else:
        console.print(f"{article_id}: {outcome.accepted[0].status}")


@articles_app.command("share")
def share_command(
    ctx: typer.Context,
    article_id: str,
    channel: Annotated[str | None, typer.Option("--channel", help="Only this channel.")] = None,
    actor: Annotated[str | None, typer.Option("--actor", show_default="the OS user",
                                              help="Who is acting, for the ops log.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Post an article again, on purpose (every channel, or one): recorded as an operator action.

    The running workers post it within seconds (their sweeper picks the request up).
    """
    rt: Runtime = ctx.obj
    try:
        done, _ = share_again(rt.store, article_id, actor or os_user(), channel,
                              known=channel_names(rt.site, rt.settings))
    except (NotFound, ValidationError) as exc:
        fail(str(exc))
    if as_json:
        print_json({"action": done.action, "target": done.target, "message": done.message})
    else:
        console.print(done.message)
