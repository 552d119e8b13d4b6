"""The article a CMS sends, validated and cleaned.

``parse_article`` is the only way in: it validates with pydantic, strips characters
XML forbids, sanitises HTML and resolves naive dates in the site's time zone. A refused
article raises ``ValidationError`` naming each field and the reason.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from typing import Annotated, Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo

from syndication.errors import FieldError, ValidationError
from syndication.text import clean_html, normalise_url, slugify, strip_xml_invalid

_HANDLE = re.compile(r"^@?[A-Za-z0-9_]{1,15}$")
_EMAIL = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$")
_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_LANG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
# Control characters and the line and paragraph separators: refused in ids.
_LINE_BREAKING = {"Cc", "Zl", "Zp"}
# Spec: RFC 3339 §5.6 date-time; without an offset it is read in the site's zone. The year is
# kept to 1000-8999, so that any offset converts to UTC (datetime stops at years 1 and 9999).
_DATE_TIME = re.compile(r"^[1-8][0-9]{3}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})?$")

# What /openapi.json says of each string, beside the validator that enforces it (the fuzz test
# in tests/integration/test_api_fuzz.py checks that the two agree). JSON Schema patterns.
# XML-invalid characters, less lone surrogates: no regex engine of the fuzzers takes a range of them.
_XML_BAD = "\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\uFFFE\\uFFFF"
_SPACE = "\\s\\x85"  # Python's white space: ECMA's \s lacks NEL (U+0085)
_VISIBLE = {"pattern": f"[^{_SPACE}{_XML_BAD}]"}  # a character left after white space and XML-invalid ones go
_URL = {"pattern": f"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9._~-]+(:[0-9]{{1,5}})?([/?#][^{_SPACE}]*)?$"}
_EMAIL_CHAR = f'[^@{_SPACE}<>"{_XML_BAD}]'
_EMAIL_SCHEMA = {"pattern": f"^({_EMAIL_CHAR}+@{_EMAIL_CHAR}+\\.{_EMAIL_CHAR}+)?$"}
_HANDLE_SCHEMA = {"pattern": "^(@?[A-Za-z0-9_]{1,15})?$"}
_MIME_SCHEMA = {"pattern": "^([A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*)?$"}
_LANG_SCHEMA = {"pattern": "^([A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*)?$"}
_DATE_SCHEMA = {"pattern": "^[1-8][0-9]{3}-"}
_URL_OR_EMPTY = {"pattern": "^$|" + _URL["pattern"]}
URL_MAX = 2048
# An id: no control character, line or paragraph separator (``Article._id``), and a visible one.
_ID_SCHEMA = {"pattern": "^[^\\x00-\\x1F\\x7F-\\x9F\\u2028\\u2029\\uFFFE\\uFFFF]+$", "allOf": [_VISIBLE]}


def _scrub(value: Any) -> Any:
    """Strip XML-invalid characters from every string in a JSON value."""
    if isinstance(value, str):
        return strip_xml_invalid(value).strip()
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    return value


def _url(value: str) -> str:
    return normalise_url(value)


class _Model(BaseModel):
    # Strict: a JSON string is no boolean or integer here, as /openapi.json says.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, strict=True)


_SOCIAL_KEY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
# A handle on any service: "@name@instance", "name.bsky.social", "name"; each channel kind
# checks its own syntax when it mentions someone (``PostRules.handle``).
_ANY_HANDLE = re.compile(r"^@?[^\s@]{1,253}(@[^\s@]{1,253})?$")


class Author(_Model):
    """A byline. ``social`` holds the author's handle per channel kind; ``x`` is the older
    spelling of ``social.x``. ``staff`` marks a newsroom member for the channels' staff lists."""

    name: str = Field(min_length=1, max_length=200, json_schema_extra=_VISIBLE)
    email: Annotated[str, Field(max_length=254, json_schema_extra=_EMAIL_SCHEMA)] | None = None
    url: Annotated[str, Field(max_length=URL_MAX, json_schema_extra=_URL_OR_EMPTY)] | None = None
    x: Annotated[str, Field(max_length=16, json_schema_extra=_HANDLE_SCHEMA)] | None = None
    social: dict[str, str] = Field(default_factory=dict, max_length=20, json_schema_extra={
        "propertyNames": {"pattern": _SOCIAL_KEY.pattern},
        "properties": {"x": {"type": "string", "maxLength": 16, "pattern": _HANDLE.pattern}},
        "additionalProperties": {"type": "string", "maxLength": 507,
                                 "pattern": f"^@?[^{_SPACE}@{_XML_BAD}]{{1,253}}(@[^{_SPACE}@{_XML_BAD}]{{1,253}})?$"}})
    staff: bool = False

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value and not _EMAIL.match(value):
            raise ValueError("not an email address")
        return value or None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _url(value) if value else None

    @field_validator("x")
    @classmethod
    def _handle(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not _HANDLE.match(value):
            raise ValueError("not an X handle (1-15 letters, digits or _)")
        return value.lstrip("@")

    @field_validator("social")
    @classmethod
    def _handles(cls, value: dict[str, str]) -> dict[str, str]:
        for key, handle in value.items():
            if not _SOCIAL_KEY.match(key):
                raise ValueError(f"{key!r} is not a channel kind (lower-case letters, digits, _)")
            if key == "x" and not _HANDLE.match(handle):
                raise ValueError("x: not an X handle (1-15 letters, digits or _)")
            if not _ANY_HANDLE.match(handle):
                raise ValueError(f"{key}: not a handle (no spaces, such as @name@instance or name.bsky.social)")
        return {key: handle for key, handle in value.items() if handle}

    def handle(self, kind: str) -> str | None:
        """The author's own handle for a channel kind, as given (``social``, or ``x``)."""
        return self.social.get(kind) or (self.x if kind == "x" else None)


class Image(_Model):
    """The article's lead image, carried as an enclosure."""

    url: str = Field(max_length=URL_MAX, json_schema_extra=_URL)
    type: Annotated[str, Field(max_length=255, json_schema_extra=_MIME_SCHEMA)] | None = None
    length: int | None = Field(None, ge=0, le=2**53)
    alt: str | None = Field(None, max_length=1000)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _url(value)

    @field_validator("length", mode="before")
    @classmethod
    def _whole(cls, value: Any) -> Any:
        # JSON has one number type: 7733.0 is an integer to JSON Schema, so to us too.
        return int(value) if isinstance(value, float) and value.is_integer() else value

    @field_validator("type")
    @classmethod
    def _mime(cls, value: str | None) -> str | None:
        if value and not _MIME.match(value.lower()):
            raise ValueError("not a MIME type such as image/jpeg")
        return value.lower() if value else None


class Social(_Model):
    """Per-article overrides for social posts. ``correction``: this update is a correction
    and is posted as one (without ``[social] correction_posts``)."""

    text: str | None = Field(None, max_length=2000)
    skip: bool = False
    correction: bool = False


def _max_length(field: FieldInfo | None) -> int | None:
    """A field's ``max_length`` (pydantic keeps it in the field's metadata as ``MaxLen``)."""
    return next((int(m.max_length) for m in (field.metadata if field else ()) if hasattr(m, "max_length")), None)


class Article(_Model):
    """One article, clean and valid. Dates are aware and in UTC."""

    # Whitespace is stripped by ``_scrub_input`` once the lengths were counted as sent: the
    # documented maxLength counts every character sent. (pydantic strips before it counts:
    # schemathesis found a summary of 20,001 characters, mostly spaces, taken.)
    model_config = ConfigDict(str_strip_whitespace=False)  # merged with _Model's (strict, frozen...)

    id: str = Field(min_length=1, max_length=200, json_schema_extra=_ID_SCHEMA)
    url: str = Field(max_length=URL_MAX, json_schema_extra=_URL)
    title: str = Field(min_length=1, max_length=1000, json_schema_extra=_VISIBLE)
    summary: str | None = Field(None, max_length=20_000)
    content_html: str | None = Field(None, max_length=2_000_000)
    published_at: datetime = Field(json_schema_extra=_DATE_SCHEMA)
    updated_at: Annotated[datetime, Field(json_schema_extra=_DATE_SCHEMA)] | None = None
    section: str | None = Field(None, max_length=200)
    authors: list[Author] = Field(default_factory=list, max_length=50)
    tags: list[Annotated[str, Field(min_length=1, max_length=100, json_schema_extra=_VISIBLE)]] = Field(
        default_factory=list, max_length=100)
    language: Annotated[str, Field(max_length=35, json_schema_extra=_LANG_SCHEMA)] | None = None
    image: Image | None = None
    source: str | None = Field(None, max_length=500)
    social: Social | None = None

    @model_validator(mode="before")
    @classmethod
    def _scrub_input(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        # A string longer than its field allows is left as sent, to be refused as too long.
        too_long = {name: value for name, value in data.items() if isinstance(value, str)
                    and (limit := _max_length(cls.model_fields.get(name))) is not None and len(value) > limit}
        # The id is refused, not scrubbed, when it holds a control character (see ``_id``).
        return {**_scrub(data), **too_long, **({"id": data["id"]} if "id" in data else {})}

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        # A newline in an id would write a fake line into every plain-text log that names it.
        if strip_xml_invalid(value) != value or any(unicodedata.category(ch) in _LINE_BREAKING for ch in value):
            raise ValueError("must not contain control characters such as newlines")
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _url(value)

    @field_validator("published_at", "updated_at", mode="before")
    @classmethod
    def _rfc3339(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None or isinstance(value, datetime):
            parsed = value
        elif isinstance(value, str):
            try:
                if not _DATE_TIME.match(value):
                    raise ValueError
                if value[17:19] == "60":  # Spec: RFC 3339 §5.7 leap second; datetime stops at :59
                    value = value[:17] + "59" + value[19:]
                parsed = datetime.fromisoformat(value.replace("z", "Z"))
            except ValueError:
                raise ValueError("not an RFC 3339 date-time such as 2026-05-01T09:30:00Z (years 1000 to "
                                 "8999)") from None
        else:
            raise ValueError("must be an RFC 3339 string")
        if parsed is None:
            return None
        if parsed.tzinfo is None:
            zone: tzinfo = (info.context or {}).get("tz", timezone.utc)
            parsed = parsed.replace(tzinfo=zone)
        try:
            return parsed.astimezone(timezone.utc)
        except OverflowError:
            raise ValueError("out of range") from None

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        seen: dict[str, str] = {}
        for tag in value:
            if not isinstance(tag, str) or not tag.strip():
                raise ValueError("tags must be non-blank strings")
            if len(tag) > 100:
                raise ValueError("a tag is longer than 100 characters")
            seen.setdefault(tag.casefold(), tag.strip())
        return list(seen.values())

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        if value and not _LANG.match(value):
            raise ValueError("not a language tag such as en or pt-BR")
        return value or None

    @field_validator("section", "summary", "content_html", "source")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _clean(self, info: ValidationInfo) -> "Article":
        if (info.context or {}).get("stored"):
            return self  # cleaned when it came in; rendering reloads it many times
        # Frozen model: clean by rebuilding the HTML fields in place once.
        for name in ("summary", "content_html"):
            raw = getattr(self, name)
            if raw:
                object.__setattr__(self, name, clean_html(raw, self.url) or None)
        if self.title.strip() == "":
            raise ValueError("title must not be blank")
        return self

    @property
    def section_slug(self) -> str | None:
        return slugify(self.section) if self.section else None


def parse_article(data: Any, *, tz: tzinfo = timezone.utc, index: int | None = None) -> Article:
    """Validate one article from CMS JSON.

    Naive ``published_at``/``updated_at`` are read in ``tz`` (the site's zone).
    Raises ``ValidationError`` listing every refused field.

    >>> parse_article({"id": "a1", "url": "https://ex.org/a1", "title": "Hi",
    ...                "published_at": "2026-05-01T09:30:00Z"}).id
    'a1'
    """
    if not isinstance(data, dict):
        raise ValidationError([FieldError("(article)", "must be a JSON object")], index=index)
    try:
        return Article.model_validate(data, context={"tz": tz})
    except pydantic.ValidationError as exc:
        errors = [
            FieldError(".".join(str(p) for p in err["loc"]) or "(article)", _reason(err))
            for err in exc.errors()
        ]
        raise ValidationError(errors, index=index) from None


def _reason(err: Any) -> str:
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


@dataclass(frozen=True)
class StoredArticle:
    """An article as the store holds it: the article plus its bookkeeping."""

    article: Article
    revision: int
    status: str  # "published" | "scheduled" | "withdrawn"
    origin: str  # "api" | "import"
    received_at: datetime
    modified_at: datetime

    @property
    def updated(self) -> datetime:
        """When the entry last changed, for feeds: the CMS's ``updated_at``, else the time
        we stored a later revision, else ``published_at``."""
        if self.article.updated_at:
            return max(self.article.updated_at, self.article.published_at)
        if self.revision > 1:
            return max(self.modified_at, self.article.published_at)
        return self.article.published_at

    @property
    def withdrawn(self) -> bool:
        return self.status == "withdrawn"

    @property
    def scheduled(self) -> bool:
        """In no feed and not posted until its ``published_at`` (then it is released)."""
        return self.status == "scheduled"
