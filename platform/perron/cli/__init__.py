"""``perron``: run, migrate and manage a Perron deployment from the command line.

Every command that changes something runs in one transaction, records the person running
it (``cli:<user>@<host>``) in the audit log, and says what it did. A refused input changes
nothing and exits with status 1; a configuration problem exits with status 2.
"""

from __future__ import annotations

import logging
import sys

import click

from perron import __version__
from perron.cli import (
    adoption,
    billing,
    console,
    db,
    domains,
    i18n,
    intercommunales,
    jobs,
    keycloak,
    modules,
    notifications,
    serve,
    tenants,
    territory,
)
from perron.cli.common import err
from perron.config import ConfigurationError, Settings, load_settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="perron")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Perron: one deployment serving many communes."""
    try:
        settings = load_settings()
    except ConfigurationError as error:
        err.print(str(error), markup=False)
        sys.exit(2)
    ctx.ensure_object(dict)["settings"] = settings
    _quiet_logging(settings)
    from perron.i18n import using_language

    # The command line speaks English (pages speak their visitor's language), for this command only.
    ctx.with_resource(using_language("en"))
    from perron.modules.registry import registry

    registry.load_installed()  # modules add migrations, settings and jobs the commands need


def _quiet_logging(settings: Settings) -> None:
    """Commands print their own report; only warnings from the libraries reach stderr."""
    from perron.logging import configure_logging

    quiet = max(logging.WARNING, logging.getLevelName(settings.log_level))
    configure_logging(
        settings.model_copy(update={"log_level": logging.getLevelName(quiet)}), stream=sys.stderr
    )


main.add_command(serve.serve)
main.add_command(serve.dev)
main.add_command(serve.worker)
main.add_command(db.db)
main.add_command(tenants.tenants)
main.add_command(domains.domains)
main.add_command(intercommunales.intercommunales)
main.add_command(i18n.i18n)
main.add_command(modules.modules)
main.add_command(jobs.jobs)
main.add_command(notifications.notifications)
main.add_command(territory.territory)
main.add_command(adoption.adoption)
main.add_command(keycloak.keycloak)
main.add_command(console.console)
main.add_command(billing.billing)

__all__ = ["main"]
