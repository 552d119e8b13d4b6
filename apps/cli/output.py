"""Printing data as Rich tables or JSON."""
from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console

console = Console()
errors = Console(stderr=True)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def fail(message: str, code: int = 1) -> None:
    errors.print(f"[red]error:[/red] {message}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(code)
