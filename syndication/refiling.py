"""Re-filing stored articles after a change to ``[feeds]``, and removing feeds that no longer exist.

Feed membership is decided when an article is stored. After the site's ``[feeds]`` table
changes (a section turned off, tags turned on), ``refile_all`` files every published article
again under the new rules, and deletes the files of feeds no article belongs to any more.
``syndication render --all`` runs it before rendering.

>>> refiled = refile_all(store, site, Path("var/feeds"), clock=utcnow)
>>> refiled.gone
['tag/budget']
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from config import SiteConfig
from syndication.feeds.catalog import ALL, FORMATS, feeds_for, parse_key
from syndication.feeds.files import remove_file
from syndication.publishing import Clock, utcnow
from syndication.store import Store
from syndication.store.articles import add_memberships, articles_after, memberships_of, remove_memberships
from syndication.store.feed_state import all_states, forget_feeds, mark_dirty

log = logging.getLogger(__name__)
BATCH = 1000


@dataclass
class Refiled:
    """What re-filing changed: articles moved, memberships added and removed, feeds gone."""

    articles: int = 0
    added: int = 0
    removed: int = 0
    gone: list[str] = field(default_factory=list)


def refile_all(store: Store, site: SiteConfig, feeds_dir: Path, *, clock: Clock = utcnow,
               batch: int = BATCH) -> Refiled:
    """File every published article into the feeds ``site.feeds`` gives it now (a transaction
    per ``batch`` articles), mark the feeds that changed for rendering, and delete the files and
    state of feeds that no stored article belongs to under these rules (``all`` always stays).
    """
    done, exists, after = Refiled(), {ALL.key}, ""
    while True:
        with store.transaction() as session:
            stored = articles_after(session, after, batch)
            if not stored:
                break
            current = memberships_of(session, [s.article.id for s in stored])
            labels: dict[str, str] = {}
            added, removed = [], []
            for s in stored:
                specs = feeds_for(s.article, site.feeds)
                exists.update(spec.key for spec in specs)  # scheduled and withdrawn ones too: they may come back
                if s.status != "published":
                    continue
                wanted, have = {spec.key for spec in specs}, current.get(s.article.id, set())
                if wanted == have:
                    continue
                done.articles += 1
                labels.update((spec.key, spec.label) for spec in specs if spec.key not in have)
                labels.update((key, "") for key in have - wanted if key not in labels)
                added.append((s.article, sorted(wanted - have)))
                removed.extend((s.article.id, key) for key in sorted(have - wanted))
            add_memberships(session, added)
            remove_memberships(session, removed)
            mark_dirty(session, labels.items(), now=clock())
            done.added += sum(len(keys) for _, keys in added)
            done.removed += len(removed)
        after = stored[-1].article.id
    with store.transaction() as session:
        done.gone = sorted(s.feed_key for s in all_states(session) if s.feed_key not in exists)
        forget_feeds(session, done.gone)
    for key in done.gone:
        spec = parse_key(key)
        for fmt in FORMATS.values():
            remove_file(Path(spec.relpath(fmt)), feeds_dir)
    log.info("articles re-filed", extra={"articles": done.articles, "added": done.added, "removed": done.removed,
                                         "feeds_gone": len(done.gone)})
    return done
