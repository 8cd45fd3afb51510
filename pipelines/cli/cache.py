"""``tinyaug cache``: the graphs ``--backend onnxruntime`` keeps in ``$TINYAUG_CACHE/onnx``
(``tinyaug.pipelines.io.onnx_graphs``): list them, and clear the ones this installation no
longer uses (built with another torch, onnxruntime or exporter version), or all of them."""

from __future__ import annotations

import click

from tinyaug.pipelines.cli.common import friendly_errors


@click.group("cache")
def cache_group() -> None:
    """The exported ONNX graphs in $TINYAUG_CACHE/onnx (default ~/.cache/tinyaug/onnx).

    A graph is built once per model and mode; an upgrade of torch or onnxruntime makes new ones
    and leaves the old ones stale. The word vectors' cache beside them is not touched.

    Example: tinyaug cache clear
    """


@cache_group.command("list")
@friendly_errors
def list_command() -> None:
    """Each graph: size, whether it is still used here, its mode and model.

    Example: tinyaug cache list
    """
    from tinyaug.pipelines.io.onnx_graphs import cached_graphs, graphs_root

    graphs = cached_graphs()
    if not graphs:
        click.echo(f"no graphs in {graphs_root()}")
        return
    for graph in graphs:
        about = graph.about or {}
        state = "stale" if graph.stale else "in use"
        click.echo(f"{graph.size / 1e6:8.1f} MB  {state:6}  {about.get('mode', '?'):16}  "
                   f"{about.get('model', '(built before tinyaug recorded it)')}  [{graph.path.name}]")
    stale = [g for g in graphs if g.stale]
    click.echo(f"{len(graphs)} graphs, {sum(g.size for g in graphs) / 1e6:.1f} MB in {graphs_root()}; "
               f"{len(stale)} stale ({sum(g.size for g in stale) / 1e6:.1f} MB): tinyaug cache clear removes them")


@cache_group.command("clear")
@click.option("--all", "everything", is_flag=True, help="Every graph, not only the stale ones (each is "
                                                        "exported again on its next use).")
@friendly_errors
def clear_command(everything: bool) -> None:
    """Remove the stale graphs (built with other versions than this installation's).

    Example: tinyaug cache clear   (or tinyaug cache clear --all)
    """
    from tinyaug.errors import TinyaugError
    from tinyaug.pipelines.io.onnx_graphs import cached_graphs
    from tinyaug.pipelines.io.storage import remove_tree

    graphs = cached_graphs()
    chosen = [g for g in graphs if everything or g.stale]
    for graph in chosen:
        try:
            remove_tree(graph.path)
        except OSError as exc:
            raise TinyaugError(f"cannot remove {graph.path} ({exc.strerror or exc}); check its permissions") from None
    click.echo(f"removed {len(chosen)} graphs ({sum(g.size for g in chosen) / 1e6:.1f} MB); "
               f"kept {len(graphs) - len(chosen)}")


COMMANDS = [cache_group]
