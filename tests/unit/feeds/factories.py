"""Builders for feed tests: a site, articles that went through ``parse_article``, and
the stored entries the renderers take, newest first."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from config import SiteInfo
from syndication.articles import Article, StoredArticle, parse_article

BASE = "https://news.example.org"
T0 = datetime(2026, 5, 1, 9, 30, tzinfo=timezone.utc)
HUBS = ["https://hub.example.net/", "https://websub.example.com/hub"]


def site(**overrides: Any) -> SiteInfo:
    """The Example Gazette, with a logo, a copyright line and no hubs unless given."""
    values: dict[str, Any] = {
        "title": "The Example Gazette",
        "base_url": BASE + "/",
        "description": "News from the example newsroom",
        "language": "en",
        "timezone": "Europe/London",
        "logo": BASE + "/static/logo.png",
        "copyright": "© 2026 The Example Gazette",
    }
    values.update(overrides)
    return SiteInfo(**values)


def article(n: int = 1, **overrides: Any) -> Article:
    """Article number ``n``, published ``n`` hours before T0, cleaned by parse_article."""
    data: dict[str, Any] = {
        "id": f"story-{n}",
        "url": f"{BASE}/2026/05/story-{n}",
        "title": f"Story number {n}",
        "summary": f"<p>What happened in story {n}.</p>",
        "content_html": f"<p>The whole of story {n}.</p><p>Second paragraph.</p>",
        "published_at": (T0 - timedelta(hours=n)).isoformat(),
        "section": "Politics",
        "authors": [{"name": "Ada Reporter", "email": "ada@news.example.org"}],
        "tags": ["harbour", "council"],
    }
    data.update(overrides)
    return parse_article(data, tz=site().tz)


def stored(item: Article, *, revision: int = 1, modified_at: datetime | None = None) -> StoredArticle:
    """``item`` as the store returns it."""
    received = item.published_at
    return StoredArticle(item, revision, "published", "api", received, modified_at or received)


def newest_first(items: list[StoredArticle]) -> list[StoredArticle]:
    """The order the store hands entries to the renderers."""
    return sorted(items, key=lambda s: (s.article.published_at, s.article.id), reverse=True)


def entries(count: int = 3) -> list[StoredArticle]:
    """``count`` ordinary stored articles, newest first."""
    return newest_first([stored(article(n)) for n in range(1, count + 1)])


HOSTILE_HTML = (
    '<p onclick="steal()">Hi<script>alert(1)</script><iframe src="https://evil.example"></iframe>'
    '<a href="javascript:alert(2)">click</a><img src="/pic.jpg" onerror="x()">'
    '<style>body{display:none}</style><!-- comment --> ]]> &amp; &lt;tag&gt;</p>'
)


def corpus() -> list[StoredArticle]:
    """The awkward cases, newest first: scripts from around the world, hostile HTML,
    a 500 KB body, a naive date and enclosures."""
    sentence = "Lorem ipsum dolor sit amet, 経済 ✓ 🎉. "
    long_body = "<p>" + sentence * (500_000 // len(sentence.encode()) + 1) + "</p>"  # > 500 KB
    raw = [
        article(1, title="経済ニュース：東京市場は続伸", summary="<p>日経平均は３日続伸。</p>",
                content_html="<p>東京株式市場で日経平均株価は続伸した。🇯🇵</p>", section="経済",
                tags=["株式", "東京"], authors=[{"name": "山田 太郎"}], language="ja"),
        article(2, title="أخبار الاقتصاد: ارتفاع الأسهم", summary="<p>ارتفعت الأسهم اليوم.</p>",
                content_html="<p dir=\"rtl\">ارتفعت الأسهم في البورصة.</p>", section="اقتصاد",
                authors=[{"name": "فاطمة الزهراء", "email": "f@news.example.org"}], language="ar"),
        article(3, title="Emoji 🎉🔥 in the title 👩‍👩‍👧 and ZWJ", tags=["🎉", "party"],
                authors=[{"name": "😀 Smiley"}]),
        article(4, title='<script>alert("t")</script> & "quotes"', summary=HOSTILE_HTML,
                content_html=HOSTILE_HTML, authors=[{"name": "</name><evil/>"}],
                tags=["<b>bold</b>", "a&b"], section="]]>"),
        article(5, title="A very long read", content_html=long_body,
                image={"url": f"{BASE}/img/long.jpg", "length": 1_234_567, "type": "image/jpeg"}),
        article(6, title="Naive date, read in the site's zone",
                published_at="2026-04-20T08:00:00", updated_at="2026-04-21T09:00:00",
                image={"url": f"{BASE}/img/naive.png"}),
    ]
    return newest_first([stored(item) for item in raw])
