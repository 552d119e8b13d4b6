"""The public surface is pinned: a change to exports, commands or routes is deliberate."""
from __future__ import annotations

import typer.main

import syndication
from apps.cli.app import app as cli_app
from fastapi.routing import APIRoute

from apps.web import api, feeds, home, ops
from apps.web.app import create_app
from apps.web.context import WebContext
from tests.support.brokers import celery_dispatcher, stopped_broker


def test_package_exports() -> None:
    assert sorted(syndication.__all__) == [
        "AlreadyPosted", "Article", "Author", "ChannelError", "ConfigError", "Dispatcher", "FieldError",
        "Image", "MediaRefused", "NotFound", "Outcome", "PermanentChannelError", "RateLimited", "RejectedPost", "Social", "Store",
        "StoreError", "StoredArticle", "SyndicationError", "TransientChannelError", "ValidationError",
        "announce", "load_site", "parse_article", "publish", "render_all", "render_feed", "unpublish",
    ]
    for name in syndication.__all__:
        assert getattr(syndication, name) is not None


def _commands(group, prefix: str = "") -> set[str]:  # type: ignore[no-untyped-def]
    names = set()
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            names |= _commands(command, f"{prefix}{name} ")
        else:
            names.add(f"{prefix}{name}")
    return names


def test_cli_commands() -> None:
    assert _commands(typer.main.get_command(cli_app)) == {
        "migrate", "import", "render", "run", "serve", "status",
        "articles list", "articles show", "articles unpublish", "articles share",
        "failures list", "failures retry", "failures discard",
        "channels pause", "channels resume",
    }


def test_http_routes(site, store, tmp_path) -> None:
    # The real dispatcher, for a broker that is not running: listing routes sends nothing.
    ctx = WebContext(site=site, store=store, dispatcher=celery_dispatcher(stopped_broker(tmp_path / "redis").url),
                     feeds_dir=tmp_path)
    asgi = create_app(ctx)
    routers = [module.build_router(ctx) for module in (api, feeds, home, ops)]
    routes = [*asgi.app.routes, *(r for router in routers for r in router.routes)]
    ours = {(r.path, m) for r in routes if isinstance(r, APIRoute) for m in r.methods}
    assert ours == {
        ("/api/v1/articles", "POST"), ("/api/v1/webhook", "POST"),
        ("/api/v1/articles/{article_id:path}", "DELETE"), ("/api/v1/articles/{article_id:path}", "GET"),
        ("/feeds/{path:path}", "GET"), ("/feeds/{path:path}", "HEAD"), ("/", "GET"),
        ("/healthz", "GET"), ("/readyz", "GET"), ("/metrics", "GET"),
        ("/ops", "GET"), ("/ops/status.json", "GET"), ("/ops/login", "GET"), ("/ops/login", "POST"),
        ("/ops/logout", "POST"), ("/ops/articles", "GET"), ("/ops/articles/{article_id:path}", "GET"),
        ("/ops/deliveries/{delivery_id}/retry", "POST"), ("/ops/deliveries/{delivery_id}/discard", "POST"),
        ("/ops/failures/retry-all", "POST"), ("/ops/channels/{channel}/pause", "POST"),
        ("/ops/channels/{channel}/resume", "POST"), ("/ops/share", "POST"),
    }
    # And the publish API is what the OpenAPI document describes
    assert set(asgi.app.openapi()["paths"]) == {"/api/v1/articles", "/api/v1/webhook", "/api/v1/articles/{article_id}"}
