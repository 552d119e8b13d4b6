"""A local stand-in for the parts of the Mastodon REST API the Mastodon channel uses.

Real Mastodon.py talks to it (``MastodonSettings(api_base_url=standin.url, access_token=standin.token)``)::

    with MastodonStandIn() as m:
        channel = MastodonChannel(MastodonSettings(api_base_url=m.url, access_token=m.token))
        channel.post("Hi https://ex.org/a1", url="https://ex.org/a1")
        assert m.live_statuses[0].text == "Hi https://ex.org/a1"

It answers as Mastodon does (docs.joinmastodon.org, "methods/statuses", "methods/accounts",
"methods/lists", "methods/instance"): statuses as Status entities with HTML ``content``;
errors as ``{"error": "..."}``; every answer with ``X-RateLimit-Limit``, ``-Remaining`` and
``-Reset`` (an ISO 8601 time) when a window is set; ``Idempotency-Key`` honoured on
``POST /api/v1/statuses`` (the same key gives back the status made first); 422 for a status
longer than ``max_characters`` (links counted as 23); lists only take followed accounts.

Standalone: ``python -m tests.support.mastodon_standin --port 8091 --fail-rate 0.15``.
"""
from __future__ import annotations

import html
import itertools
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import regex

from tests.support.standin_http import Request, StandInServer, run_until_stopped, standalone_arguments

TOKEN = "mastodon-standin-token"
_URL = re.compile(r"https?://[^\s<>\"]+[^\s<>\".,;:!?)\]']")


def _length(text: str) -> int:
    # Mastodon's StatusLengthValidator: links count 23, remote mentions only "@user".
    text = _URL.sub("x" * 23, text)
    text = re.sub(r"(@\w+)@[\w.-]+\w", r"\1", text)
    return len(regex.findall(r"\X", text))


def _html(text: str) -> str:
    """The text as Mastodon renders it: escaped, links as anchors, in a paragraph."""
    out, last = [], 0
    for m in _URL.finditer(text):
        out.append(html.escape(text[last:m.start()]))
        link = html.escape(m.group(0))
        out.append(f'<a href="{link}" rel="nofollow noopener" translate="no" target="_blank">{link}</a>')
        last = m.end()
    out.append(html.escape(text[last:]))
    return "<p>" + "".join(out).replace("\n", "<br />") + "</p>"


@dataclass
class Status:
    id: str
    text: str
    visibility: str
    language: str | None
    idempotency_key: str | None
    created_at: datetime
    deleted: bool = False
    media: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Account:
    id: str
    acct: str
    locked: bool = False
    followed: bool = False
    requested: bool = False
    lists: set[str] = field(default_factory=set)


class MastodonStandIn(StandInServer):
    """The stand-in and its inspectable state. ``max_characters`` is what the instance allows."""

    name = "mastodon-standin"

    def __init__(self, *, max_characters: int = 500, username: str = "gazette", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.token = TOKEN
        self.max_characters = max_characters
        self.username = username
        self.account_id = "109000000000000001"
        self._ids = itertools.count(110000000000000001)
        self._account_ids = itertools.count(109000000000000100)
        self.accounts: dict[str, Account] = {}
        self.statuses: list[Status] = []
        self.list_ids = {"42"}
        self.uploads: dict[str, dict[str, Any]] = {}

    # -- state ---------------------------------------------------------------------------

    def clear(self) -> None:
        self.statuses.clear()
        self.uploads.clear()
        for account in self.accounts.values():
            account.followed = account.requested = False
            account.lists.clear()

    def add_account(self, acct: str, *, locked: bool = False) -> Account:
        """Make ``acct`` (``name`` or ``name@domain``) known to the instance."""
        with self._lock:
            key = acct.lower().lstrip("@")
            if key not in self.accounts:
                self.accounts[key] = Account(str(next(self._account_ids)), key, locked)
            return self.accounts[key]

    @property
    def live_statuses(self) -> list[Status]:
        with self._lock:
            return [s for s in self.statuses if not s.deleted]

    def members_of(self, list_id: str) -> list[str]:
        with self._lock:
            return [a.acct for a in self.accounts.values() if list_id in a.lists]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"statuses": [{"id": s.id, "text": s.text, "deleted": s.deleted, "visibility": s.visibility,
                                  "language": s.language} for s in self.statuses],
                    "lists": {lid: self.members_of(lid) for lid in self.list_ids},
                    "requests": [{"method": r.method, "path": r.path, "status": r.status} for r in self.requests]}

    # -- the service ---------------------------------------------------------------------

    def error_body(self, status: int, message: str) -> Any:
        return {"error": message}

    def rate_limit_headers(self, limit: int, remaining: int, reset_at: int) -> dict[str, str]:
        # Spec: Mastodon rate limits — X-RateLimit-Reset is an ISO 8601 timestamp.
        reset = datetime.fromtimestamp(reset_at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining), "X-RateLimit-Reset": reset}

    def authorize(self, request: Request) -> tuple[int, Any] | None:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"error": "The access token is invalid"}
        return None

    def route(self, request: Request) -> tuple[int, Any]:
        method, seg = request.method, request.path.strip("/").split("/")
        if seg[:2] == ["api", "v2"] and seg[2:] == ["instance"] and method == "GET":
            return 200, self._instance()
        if seg[:2] == ["api", "v2"] and seg[2:] == ["media"] and method == "POST":
            return self._upload(request)
        if seg[:2] != ["api", "v1"]:
            return 404, {"error": "Record not found"}
        seg = seg[2:]
        if method == "POST" and seg == ["statuses"]:
            return self._post_status(request)
        if method == "DELETE" and len(seg) == 2 and seg[0] == "statuses":
            return self._delete_status(seg[1])
        if method == "GET" and seg == ["accounts", "verify_credentials"]:
            return 200, self._me()
        if method == "GET" and seg == ["accounts", "lookup"]:
            found = self.accounts.get((request.arg("acct") or "").lower().lstrip("@"))
            return (200, self._account(found)) if found else (404, {"error": "Record not found"})
        if method == "GET" and seg == ["accounts", "relationships"]:
            ids = request.query.get("id[]", [])
            return 200, [self._relationship(a) for a in self.accounts.values() if a.id in ids]
        if method == "GET" and len(seg) == 3 and seg[0] == "accounts" and seg[2] == "statuses":
            return self._account_statuses(seg[1], int(request.arg("limit", "20") or 20))
        if method == "POST" and len(seg) == 3 and seg[0] == "accounts" and seg[2] == "follow":
            return self._follow(seg[1])
        if method == "POST" and len(seg) == 3 and seg[0] == "lists" and seg[2] == "accounts":
            ids = request.body.get("account_ids[]", []) if isinstance(request.body, dict) else []
            return self._list_add(seg[1], ids)
        return 404, {"error": "Record not found"}

    def _instance(self) -> dict[str, Any]:
        # Spec: GET /api/v2/instance — configuration.statuses.
        return {"domain": "standin.example", "title": "Stand-in", "version": "4.3.0",
                "configuration": {"statuses": {"max_characters": self.max_characters, "max_media_attachments": 4,
                                               "characters_reserved_per_url": 23}}}

    def _me(self) -> dict[str, Any]:
        return {"id": self.account_id, "username": self.username, "acct": self.username,
                "display_name": self.username.title(), "locked": False, "bot": True,
                "url": f"https://standin.example/@{self.username}", "followers_count": 0, "following_count": 0,
                "statuses_count": len(self.live_statuses), "note": "", "avatar": "", "header": "",
                "created_at": "2024-01-01T00:00:00.000Z", "emojis": [], "fields": []}

    def _account(self, account: Account) -> dict[str, Any]:
        return {"id": account.id, "username": account.acct.split("@")[0], "acct": account.acct,
                "display_name": account.acct, "locked": account.locked, "bot": False,
                "url": f"https://standin.example/@{account.acct}", "created_at": "2024-01-01T00:00:00.000Z",
                "note": "", "avatar": "", "header": "", "followers_count": 0, "following_count": 0,
                "statuses_count": 0, "emojis": [], "fields": []}

    def _relationship(self, account: Account) -> dict[str, Any]:
        return {"id": account.id, "following": account.followed, "requested": account.requested,
                "followed_by": False, "blocking": False, "muting": False, "showing_reblogs": account.followed,
                "notifying": False, "endorsed": False, "domain_blocking": False, "note": ""}

    def _status_json(self, s: Status) -> dict[str, Any]:
        # Spec: Status entity.
        return {"id": s.id, "uri": f"https://standin.example/users/{self.username}/statuses/{s.id}",
                "url": f"https://standin.example/@{self.username}/{s.id}",
                "created_at": s.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "content": _html(s.text),
                "visibility": s.visibility, "language": s.language, "sensitive": False, "spoiler_text": "",
                "in_reply_to_id": None, "in_reply_to_account_id": None, "reblog": None, "card": None,
                "poll": None, "replies_count": 0, "reblogs_count": 0, "favourites_count": 0,
                "media_attachments": s.media, "mentions": [], "tags": [], "emojis": [], "account": self._me()}

    def _post_status(self, request: Request) -> tuple[int, Any]:
        text = request.arg("status") or ""
        key = request.headers.get("idempotency-key")
        with self._lock:
            if key:
                for s in self.statuses:
                    if s.idempotency_key == key:
                        return 200, self._status_json(s)
            if not text.strip():
                return 422, {"error": "Validation failed: Text can't be blank"}
            if _length(text) > self.max_characters:
                return 422, {"error": f"Validation failed: Text character limit of {self.max_characters} exceeded"}
            ids = request.body.get("media_ids[]", []) if isinstance(request.body, dict) else []
            if any(i not in self.uploads for i in ids):
                return 422, {"error": "Validation failed: Media attachments are invalid"}
            status = Status(str(next(self._ids)), text, request.arg("visibility") or "public",
                            request.arg("language"), key, datetime.now(timezone.utc),
                            media=[self.uploads[i] for i in ids])
            self.statuses.append(status)
            return 200, self._status_json(status)

    def _upload(self, request: Request) -> tuple[int, Any]:
        # Spec: POST /api/v2/media — multipart "file" and "description"; an image is 200 at once.
        form = request.body if isinstance(request.body, dict) else {}
        files = form.get("file") or []
        if not files or not isinstance(files[0], tuple):
            return 422, {"error": "Validation failed: File can't be blank"}
        data, mime = files[0]
        if not mime.startswith("image/"):
            return 422, {"error": f"Validation failed: File content type {mime} is not supported"}
        with self._lock:
            media_id = str(next(self._ids))
            self.uploads[media_id] = {"id": media_id, "type": "image", "mime": mime, "size": len(data),
                                      "url": f"https://standin.example/media/{media_id}.png", "preview_url": None,
                                      "remote_url": None, "meta": {}, "blurhash": None,
                                      "description": (form.get("description") or [None])[0]}
            return 200, self.uploads[media_id]

    def _delete_status(self, status_id: str) -> tuple[int, Any]:
        with self._lock:
            for s in self.statuses:
                if s.id == status_id and not s.deleted:
                    s.deleted = True
                    return 200, {**self._status_json(s), "text": s.text}
        return 404, {"error": "Record not found"}

    def _account_statuses(self, account_id: str, limit: int) -> tuple[int, Any]:
        if account_id != self.account_id:
            return 200, []
        newest = list(reversed(self.live_statuses))[:min(max(limit, 1), 40)]
        return 200, [self._status_json(s) for s in newest]

    def _follow(self, account_id: str) -> tuple[int, Any]:
        with self._lock:
            account = next((a for a in self.accounts.values() if a.id == account_id), None)
            if account is None:
                return 404, {"error": "Record not found"}
            account.requested = account.locked and not account.followed
            account.followed = account.followed or not account.locked
            return 200, self._relationship(account)

    def _list_add(self, list_id: str, ids: list[str]) -> tuple[int, Any]:
        with self._lock:
            if list_id not in self.list_ids:
                return 404, {"error": "Record not found"}
            accounts = [a for a in self.accounts.values() if a.id in ids]
            if len(accounts) != len(ids) or any(not a.followed for a in accounts):
                return 404, {"error": "Record not found"}
            if any(list_id in a.lists for a in accounts):
                return 422, {"error": "Validation failed: Account has already been taken"}
            for a in accounts:
                a.lists.add(list_id)
            return 200, {}


def main(argv: list[str] | None = None) -> None:
    """Run the stand-in until SIGINT or SIGTERM; prints its URL."""
    parser = standalone_arguments("python -m tests.support.mastodon_standin", 8091)
    parser.add_argument("--max-characters", type=int, default=500)
    args = parser.parse_args(argv)
    run_until_stopped(MastodonStandIn(host=args.host, port=args.port, fail_rate=args.fail_rate, seed=args.seed,
                                      max_characters=args.max_characters))


if __name__ == "__main__":
    main()
