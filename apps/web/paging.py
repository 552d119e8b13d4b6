"""Pages of a long table (the home page's and /ops's feeds): a request renders one page, never all."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Paging:
    """Page ``number`` (from 1) of ``total`` rows, ``size`` a page. A number past the end shows
    the last page, so a link kept from when there were more feeds still lands somewhere.

    >>> Paging.of(3, 100, 250).offset
    200
    """

    number: int
    size: int
    total: int

    @classmethod
    def of(cls, number: int, size: int, total: int) -> "Paging":
        last = max(1, -(-total // size))
        return cls(min(max(number, 1), last), size, total)

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def previous(self) -> int | None:
        return self.number - 1 if self.number > 1 else None

    @property
    def next(self) -> int | None:
        return self.number + 1 if self.number < self.pages else None
