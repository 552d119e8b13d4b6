"""``/``: a small human page listing the feeds, with autodiscovery links."""
from __future__ import annotations

from html import escape

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from syndication.feeds.catalog import ALL, FORMATS, parse_key
from syndication.store.feed_state import count_states, get_state, states_page
from apps.web.context import WebContext
from apps.web.paging import Paging


def build_router(ctx: WebContext) -> APIRouter:
    router = APIRouter()

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(page: int = Query(1, ge=1)) -> HTMLResponse:
        site = ctx.site.site
        with ctx.store.read() as session:
            paging = Paging.of(page, ctx.page_size, count_states(session, rendered_only=True))
            states = states_page(session, offset=paging.offset, limit=paging.size, rendered_only=True)
            everything = get_state(session, ALL.key)
        links, rows = [], []
        if everything is not None and everything.rendered_at is not None:
            for fmt in FORMATS.values():
                # Spec: RSS Autodiscovery (RSS Advisory Board) — <link rel="alternate"> in <head>.
                links.append(f'<link rel="alternate" type="{fmt.media_type}" title="{escape(ALL.title(site.title))}" '
                             f'href="{escape(f"/feeds/{ALL.relpath(fmt)}")}">')
        for state in states:
            spec = parse_key(state.feed_key)
            title = spec.title(site.title) if spec.kind == "all" else f"{spec.kind.capitalize()}: {state.label or spec.slug}"
            cells = []
            for fmt in FORMATS.values():
                href = f"/feeds/{spec.relpath(fmt)}"
                cells.append(f'<a href="{escape(href)}">{fmt.name.upper()}</a>')
            rows.append(f"<tr><td>{escape(title)}</td><td>{state.item_count}</td><td>{' · '.join(cells)}</td></tr>")
        pages = []
        if paging.previous:
            pages.append(f'<a rel="prev" href="/?page={paging.previous}">Previous</a>')
        if paging.pages > 1:
            pages.append(f"page {paging.number} of {paging.pages}")
        if paging.next:
            pages.append(f'<a rel="next" href="/?page={paging.next}">Next</a>')
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
<nav aria-label="Feed pages">{' · '.join(pages)}</nav>
<p><a href="/docs">API documentation</a></p>
</body></html>"""
        return HTMLResponse(body)

    return router
