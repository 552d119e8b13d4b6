"""The Typer application: reads settings once and hands a Runtime to each command."""
from __future__ import annotations

import typer

from config import Settings
from apps.cli.articles import articles_app, import_command, render_command
from apps.cli.ops import channels_app, failures_app, status_command
from apps.cli.output import fail
from apps.cli.run import run_command, serve_command
from apps.cli.runtime import Runtime
from syndication.errors import ConfigError, StoreError
from syndication.channels.registry import secrets_of
from syndication.logs import configure_logging
from syndication.store import migrate

app = typer.Typer(help="syndication: event-driven RSS, Atom and JSON Feed publishing.", no_args_is_help=True,
                  pretty_exceptions_enable=False)


@app.callback()
def _load(ctx: typer.Context) -> None:
    try:
        settings = Settings()
    except Exception as exc:  # pydantic's error names the variable; print it, not a traceback
        fail(f"invalid settings: {exc}", 2)
    configure_logging(settings.log_level, json_lines=settings.log_json, secrets=secrets_of(settings))
    ctx.obj = Runtime(settings)


@app.command("migrate")
def migrate_command(ctx: typer.Context) -> None:
    """Create or upgrade the database schema."""
    rt: Runtime = ctx.obj
    migrate(rt.store.engine)


app.command("import")(import_command)
app.command("render")(render_command)
app.command("run")(run_command)
app.command("serve")(serve_command)
app.add_typer(articles_app, name="articles")
app.command("status")(status_command)
app.add_typer(failures_app, name="failures")
app.add_typer(channels_app, name="channels")


def main() -> None:
    """Console entry point: ``syndication --help``."""
    try:
        app()
    except (ConfigError, StoreError) as exc:
        try:
            fail(str(exc), 2)
        except typer.Exit as done:  # outside click's own handling: an exit status, not a traceback
            raise SystemExit(done.exit_code) from None
