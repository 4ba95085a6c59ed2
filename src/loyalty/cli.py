"""The ``loyalty`` command line."""

from __future__ import annotations

import asyncio

import typer

from loyalty.settings import get_settings

app = typer.Typer(help="Membership and loyalty platform.", no_args_is_help=True)


@app.command()
def migrate() -> None:
    """Apply pending database migrations."""
    from loyalty import db

    settings = get_settings()
    asyncio.run(db.migrate(settings.database_url, create_db=not settings.is_sqlite))
    typer.echo("migrations applied")


if __name__ == "__main__":
    app()
