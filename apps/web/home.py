"""``/``: a small human page listing the feeds, with autodiscovery links."""
from __future__ import annotations

from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from syndication.feeds.catalog import FORMATS, parse_key
from syndication.store.feed_state import all_states
from apps.web.context import WebContext


def build_router(ctx: WebContext) -> APIRouter:
    router = APIRouter()

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home() -> HTMLResponse:
        site = ctx.site.site
        with ctx.store.read() as session:
            states = [s for s in all_states(session) if s.rendered_at is not None]
        links, rows = [], []
        for state in states:
            spec = parse_key(state.feed_key)
            title = spec.title(site.title) if spec.kind == "all" else f"{spec.kind.capitalize()}: {state.label or spec.slug}"
            cells = []
            for fmt in FORMATS.values():
                href = f"/feeds/{spec.relpath(fmt)}"
                cells.append(f'<a href="{escape(href)}">{fmt.name.upper()}</a>')
                if spec.kind == "all":
                    # Spec: RSS Autodiscovery (RSS Advisory Board) — <link rel="alternate"> in <head>.
                    links.append(f'<link rel="alternate" type="{fmt.media_type}" title="{escape(title)}" '
                                 f'href="{escape(href)}">')
            rows.append(f"<tr><td>{escape(title)}</td><td>{state.item_count}</td><td>{' · '.join(cells)}</td></tr>")
        body = f"""<!doctype html>
<html lang="{escape(site.language)}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(site.title)} — feeds</title>
{chr(10).join(links)}
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem}}
table{{border-collapse:collapse;width:100%}}td,th{{text-align:left;padding:.3rem .6rem;border-bottom:1px solid #ddd}}</style>
</head><body>
<h1>{escape(site.title)}</h1><p>{escape(site.description)}</p>
<table><thead><tr><th>Feed</th><th>Items</th><th>Formats</th></tr></thead><tbody>
{chr(10).join(rows) or '<tr><td colspan="3">No feeds rendered yet.</td></tr>'}
</tbody></table>
<p><a href="/docs">API documentation</a></p>
</body></html>"""
        return HTMLResponse(body)

    return router
