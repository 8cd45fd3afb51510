"""``tinyaug browse``: the local web app (see ``tinyaug.pipelines.browse.app``)."""

from __future__ import annotations

from pathlib import Path

import click

from tinyaug.pipelines.cli.common import BACKENDS, PRECISIONS, friendly_errors
from tinyaug.pipelines.io.models import DEFAULT_MLM
from tinyaug.pipelines.io.vectors import EMBEDDED_VECTORS, FORMATS as VECTOR_FORMATS


@click.command("browse")
@click.argument("dataset", required=False, type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 exposes the app to your network).")
@click.option("--port", type=click.IntRange(1, 65535), default=7860, show_default=True)
@click.option("--mlm", default=DEFAULT_MLM, show_default=True, help="Masked LM for candidates (as in augment).")
@click.option("--vectors", default=EMBEDDED_VECTORS, show_default=True, help="Word vectors (as in augment).")
@click.option("--vectors-format", type=click.Choice(VECTOR_FORMATS), default="auto", show_default=True)
@click.option("--trust-pickle", is_flag=True, help="Allow gensim's native (pickle) vector format.")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True,
              help="Masked-LM arithmetic (as in augment); give a dataset's own to see its candidates.")
@click.option("--backend", type=click.Choice(BACKENDS), default="torch", show_default=True,
              help="What runs the masked LM (as in augment); give a dataset's own to see its candidates.")
@click.option("--auth", envvar="TINYAUG_BROWSE_AUTH", metavar="USER:PASSWORD",
              help="Ask for this user name and password (Gradio's login page); also read from "
                   "$TINYAUG_BROWSE_AUTH, which keeps the password out of the process list.")
@friendly_errors
def browse_command(dataset, host, port, mlm, vectors, vectors_format, trust_pickle, device, precision, backend, auth):
    """Look at augmentations in the browser: a dataset's variants with every replaced word
    highlighted by source (filters, paging, candidates on click), and any sentence's candidates
    and variants. The models load on first use. The app takes no uploads and serves no files;
    its temporary files live in a folder of its own, removed when it stops.

    Example: tinyaug browse tinyaug-out/sst2-aug   (then open http://127.0.0.1:7860)
    """
    from tinyaug.pipelines.browse.guard import exposure_warning, parse_auth, private_temp_dir
    from tinyaug.pipelines.io.onnx_runtime import backend_device

    credentials = parse_auth(auth) if auth is not None else None
    backend_device(backend, device, precision)  # a model option it cannot run: refused now, not on first use
    with private_temp_dir():  # Gradio's files go here, and go when the app stops; set before Gradio is imported
        try:
            import gradio  # noqa: F401
        except ImportError:
            raise click.ClickException("tinyaug browse needs Gradio: pip install 'tinyaug[ui]'") from None
        from tinyaug.pipelines.browse.app import Models, build_app, check_port, launch
        from tinyaug.pipelines.browse.data import DatasetBrowser

        browser = DatasetBrowser(dataset) if dataset is not None else None
        check_port(host, port)

        def load():
            from tinyaug.pipelines.augmentation.methods import ModelSpec, load_models

            spec = ModelSpec(mlm, vectors, vectors_format, trust_pickle, precision, backend)
            models = load_models(spec, device, {"mlm", "vectors"})
            return models.mlm, models.vectors

        warning = exposure_warning(host, credentials)
        if warning:
            click.echo(warning, err=True)
        app = build_app(browser, Models(load))
        shown = "localhost" if host in ("127.0.0.1", "::1") else host
        click.echo(f"tinyaug browse on http://{shown}:{port} (Ctrl+C stops it)", err=True)
        launch(app, host, port, block=True, auth=credentials)

COMMANDS = [browse_command]
