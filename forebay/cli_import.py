"""`forebay import`: read OpenAPI, Swagger or Postman files and merge their endpoints into
the catalog in the store (or, with `--dry-run`, only print them)."""

from __future__ import annotations

import json
from typing import Any

import click

from forebay.cli_common import config_option, fail, settings_for, store_option, with_store
from forebay.errors import SpecError


@click.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--dry-run", is_flag=True, help="Parse and print; store nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the endpoints as JSON.")
@config_option
@store_option
def import_(
    files: tuple[str, ...], dry_run: bool, as_json: bool, config: str | None, store: str | None
) -> None:
    """Import endpoints from OpenAPI, Swagger or Postman files into the catalog."""
    from forebay.catalog.importer import import_files
    from forebay.startup import source_name

    try:
        results = import_files([source_name(f) if not dry_run else f for f in files])
    except SpecError as e:
        fail(str(e), 2)
    for result in results:
        for problem in result.problems:
            click.echo(f"skipped: {problem}", err=True)
    if dry_run:
        endpoints = [
            {
                "method": ep.method,
                "path": ep.path,
                "operation_id": ep.operation_id,
                "summary": ep.summary,
                "source": ep.source,
            }
            for r in results
            for ep in r.endpoints
        ]
        if as_json:
            click.echo(json.dumps(endpoints, indent=2))
        else:
            for row in endpoints:
                click.echo(f"{row['method']:7} {row['path']}")
        return
    settings = settings_for(config, store=store)
    report = with_store(settings, lambda s: _merge(s, results))
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        for line in report:
            click.echo(
                f"{line['file']}: {line['endpoints']} endpoints, {line['added']} added, "
                f"{line['vanished']} vanished, {line['skipped']} skipped"
            )


async def _merge(store: Any, results: list[Any]) -> list[dict[str, Any]]:
    from forebay.catalog.merge import merge_import

    out = []
    for result in results:
        report = merge_import(await store.endpoints.list(), result)
        if report.changed:
            await store.endpoints.save(report.changed)
        out.append(
            {
                "file": result.source,
                "format": result.format,
                "endpoints": len(result.endpoints),
                "added": len(report.added),
                "vanished": len(report.vanished),
                "skipped": len(result.problems),
            }
        )
    return out
