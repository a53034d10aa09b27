"""The ``zcnas`` command.

Sub-commands import what they need when they run, so ``zcnas --help`` stays fast (no torch).
An error the user can fix prints one line and exits with code 2; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import sys

import click

from zcnas import __version__
from zcnas._text import format_table
from zcnas.errors import UserError

DATA_HELP = "Data folder (default: $ZCNAS_DATA, then $TORCH_HOME)."


class _Group(click.Group):
    """A click group that turns :class:`UserError` into one line and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as err:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"zcnas: error: {err}", err=True)
            sys.exit(err.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zcnas")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """zcnas: zero-cost and multi-fidelity neural architecture search on NATS-Bench."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


@main.command()
@click.option("--data", "data", type=click.Path(file_okay=False), default=None, help=DATA_HELP)
def info(data: str | None) -> None:
    """Show the spaces, the datasets, and which data files were found where."""
    from zcnas.inventory import inventory
    from zcnas.paths import data_roots
    from zcnas.spaces import SPACES

    click.echo("Search spaces")
    click.echo(format_table(
        [(name, f"{mod.SIZE:,}", mod.ARCH_FORMAT) for name, mod in SPACES.items()],
        ("name", "size", "arch format"),
    ))
    roots = data_roots(data)
    click.echo("\nData folders searched: " + (", ".join(map(str, roots)) or
                                              "none (pass --data or set ZCNAS_DATA)"))
    click.echo(format_table([(i.kind, i.name, i.status, i.where) for i in inventory(data)],
                      ("kind", "name", "status", "where")))


@main.command()
@click.argument("arch")
@click.option("--space", default="nats-tss", show_default=True, help="nats-tss or nats-sss.")
@click.option("--dataset", "datasets", multiple=True,
              help="Only this dataset (repeatable; default: cifar10, cifar100, ImageNet16-120).")
@click.option("--data", "data", type=click.Path(file_okay=False), default=None, help=DATA_HELP)
def arch(arch: str, space: str, datasets: tuple[str, ...], data: str | None) -> None:
    """Validate ARCH (an arch string or a benchmark index) and describe it.

    Prints its benchmark index, isomorphism class, parameters and FLOPs per dataset, and the
    benchmark accuracies when a lookup table is found.
    """
    from zcnas.describe import describe_arch

    click.echo(describe_arch(arch, space=space, root=data, datasets=datasets or None))


@main.group()
def data() -> None:
    """Manage datasets (nothing is ever downloaded unless you ask here)."""


@data.command("download")
@click.argument("dataset")
@click.option("--data", "root", type=click.Path(file_okay=False), default=None, help=DATA_HELP)
@click.option("--url", default=None, help="Fetch from this URL instead of the official one.")
def data_download(dataset: str, root: str | None, url: str | None) -> None:
    """Download DATASET's official archive into the data folder and verify its checksum."""
    from zcnas.data.download import download

    path = download(dataset, root, url=url)
    click.echo(f"{dataset}: ready at {path}")


if __name__ == "__main__":  # pragma: no cover
    main()
