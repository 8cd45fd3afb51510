"""``tinyaug browse``: a local Gradio app to look at augmentations.

Two views. **Dataset** (when a dataset is given): its examples page by page, original first and
then the variants, every replaced word highlighted by source with its rank (hover: what it
replaced; click: the word's full candidate list, computed by the models), labels, the teacher's
prediction and a flip marker where ``teacher-logits`` stored them; filters by source, label,
changed rows, flips and text; the dataset card. **Sentence**: a sentence (or a pair), each word's
route and candidates with scores, and sampled variants for the chosen N, K, p and seed.

Gradio because its components, queue and server are the ecosystem's standard for model demos and
it runs offline; the views are plain HTML (``render``) so that a variant's words can carry their
provenance. The models load once, on first use. The app serves only the dataset it was started
with (the browser never names a file), binds to 127.0.0.1 unless told otherwise, and bounds every
input (sentence length, N, K, page size, search length); ``guard`` refuses uploads and file routes
and bounds request bodies.

Not here: the data layer (``data``), HTML (``render``).
"""

from __future__ import annotations

import functools
import os
import socket
import threading
from typing import Any, Callable

from tinyaug.augment.recipe import Recipe
from tinyaug.errors import TinyaugError
from tinyaug.pipelines.browse.guard import Guard
from tinyaug.pipelines.browse.data import MAX_PAGE_SIZE, MAX_SEARCH_CHARS, DatasetBrowser, Filters
from tinyaug.pipelines.browse.render import CSS, candidates_html, page_html, page_status, plan_html, segments_html

MAX_SENTENCE_CHARS = 2000
MAX_VARIANTS = 50
MAX_CANDIDATES = 50
PAGE_SIZES = (5, 10, 20, 50, MAX_PAGE_SIZE)

# A click on a replaced word puts "example|column|word|time" into a hidden text box, whose change
# event asks the server for that word's candidates.
CLICK_JS = """<script>
document.addEventListener('click', (event) => {
  const mark = event.target.closest('mark.aug-word[data-example]');
  const box = document.querySelector('#aug-click textarea, #aug-click input');
  if (!mark || !box) return;
  box.value = [mark.dataset.example, mark.dataset.column, mark.dataset.word, Date.now()].join('|');
  box.dispatchEvent(new Event('input', {bubbles: true}));
});
</script>"""
HIDDEN_CSS = "#aug-click { display: none !important; }"


class Models:
    """The masked LM and vectors, loaded once on first use (thread-safe); augmenters per recipe."""

    def __init__(self, load: Callable[[], tuple[Any, Any]]) -> None:
        self._load, self._loaded, self._lock = load, None, threading.Lock()

    def get(self) -> tuple[Any, Any]:
        with self._lock:
            if self._loaded is None:
                self._loaded = self._load()
            return self._loaded

    @functools.lru_cache(maxsize=8)
    def augmenter(self, recipe: Recipe) -> Any:
        from tinyaug.pipelines.augmentation.methods import build_augmenter

        mlm, vectors = self.get()
        return build_augmenter(recipe, mlm, vectors, batch_size=64)


def check_port(host: str, port: int) -> None:
    """One line instead of a server traceback when ``host:port`` cannot be bound."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise TinyaugError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); the port is in use or "
                               "the address is not this machine's: pass another --port or --host") from None


def build_app(browser: DatasetBrowser | None, models: Models) -> Any:
    """The Gradio Blocks app (not launched)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    def failing(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except TinyaugError as exc:
                raise gr.Error(str(exc)) from None
        return wrapper

    with gr.Blocks(title="tinyaug browse", analytics_enabled=False) as app:
        gr.Markdown("## tinyaug browse" + (f" · `{browser.path.name}`: {browser.examples:,} examples, "
                                           f"{len(browser.dataset):,} rows" if browser else ""))
        if browser is not None:
            with gr.Tab("Dataset", id="dataset"):
                first_page = _dataset_view(gr, browser, models, failing)
            app.load(*first_page)
        with gr.Tab("Sentence", id="sentence"):
            _sentence_view(gr, models, failing)
        if browser is not None:
            with gr.Tab("Card", id="card"):
                gr.Markdown(browser.card())
    return app


def _dataset_view(gr: Any, browser: DatasetBrowser, models: Models, failing: Callable) -> tuple:
    """The dataset view's components and events; returns the first page's (function, inputs, outputs)."""
    with gr.Row():
        source = gr.Dropdown(["any", *browser.sources], value="any", label="edited by", elem_id="aug-source")
        label = gr.Dropdown(["any", *browser.labels()], value="any", label="label", elem_id="aug-label")
        changed = gr.Checkbox(label="changed rows only", elem_id="aug-changed")
        flips = gr.Checkbox(label="teacher flips only", interactive=browser.has_teacher, elem_id="aug-flips")
        search = gr.Textbox(label="text search", max_length=MAX_SEARCH_CHARS, elem_id="aug-search")
    with gr.Row():
        previous = gr.Button("\u2190 previous", elem_id="aug-previous")
        number = gr.Number(value=1, precision=0, minimum=1, label="page", elem_id="aug-page-number")
        following = gr.Button("next \u2192", elem_id="aug-next")
        size = gr.Dropdown(list(PAGE_SIZES), value=10, label="examples per page", elem_id="aug-size")
    status = gr.Markdown(elem_id="aug-status")
    with gr.Row():
        with gr.Column(scale=3):
            shown = gr.HTML(elem_id="aug-page")
        with gr.Column(scale=1):
            click = gr.Textbox(elem_id="aug-click", container=False)
            candidates = gr.HTML("<p>Click a highlighted word for its candidates.</p>", elem_id="aug-candidates")

    @failing
    def show(source_: str, label_: str, changed_: bool, flips_: bool, search_: str, number_: float, size_: int,
             step: int = 0) -> tuple[str, str, int]:
        filters = Filters(source_, None if label_ == "any" else label_, bool(changed_), bool(flips_),
                          (search_ or "").strip())
        page = browser.page(filters, int(number_ or 1) + step, int(size_))
        return page_html(page, browser.text_columns), page_status(page), page.number

    inputs = [source, label, changed, flips, search, number, size]
    outputs = [shown, status, number]
    def first_page(*values: Any) -> tuple[str, str, int]:  # a new filter or page size starts at page 1
        return show(*values[:5], 1, values[6])

    for control in (source, label, changed, flips, size):
        control.change(first_page, inputs, outputs)
    search.submit(first_page, inputs, outputs)
    number.submit(show, inputs, outputs)
    previous.click(lambda *a: show(*a, step=-1), inputs, outputs)
    following.click(lambda *a: show(*a, step=1), inputs, outputs)

    @failing
    def word_candidates(value: str) -> str:
        return _word_candidates(browser, models, value)

    click.change(word_candidates, click, candidates)
    return show, inputs, outputs


def _word_candidates(browser: DatasetBrowser, models: Models, value: str) -> str:
    """The candidate list of the word a click named (``example|column|word_index|time``)."""
    try:
        example, column, word_index = value.split("|")[:3]
        example_id, word = int(example), int(word_index)
    except ValueError:
        return ""
    if column not in browser.text_columns:
        return ""
    text = browser.original_text(example_id, column)
    recipe = Recipe.from_dict(browser.metadata["recipe"]) if browser.metadata.get("recipe") else Recipe()
    plan = models.augmenter(recipe).plan([text])[0]
    if not 0 <= word < len(plan.words):
        return ""
    mlm, vectors = models.get()
    note = ""
    if browser.metadata.get("mlm") not in (None, mlm.identifier):
        note = (f"<p class=\"aug-meta\">Candidates from {mlm.identifier}; the dataset was made with "
                f"{browser.metadata.get('mlm')} (start browse with the --mlm, --precision and --backend it was "
                "made with to match).</p>")
    return candidates_html(plan.words[word].text, plan.routes[word], plan.candidates[word],
                           plan.missing.get(word)) + note


def _sentence_view(gr: Any, models: Models, failing: Callable) -> None:
    with gr.Row():
        first = gr.Textbox(label="sentence", max_length=MAX_SENTENCE_CHARS, elem_id="aug-sentence",
                           value="the movie was a charming surprise .")
        second = gr.Textbox(label="second sentence (pairs, optional)", max_length=MAX_SENTENCE_CHARS,
                            elem_id="aug-sentence2")
    with gr.Row():
        variants = gr.Slider(0, MAX_VARIANTS, value=5, step=1, label="N (variants)", elem_id="aug-n")
        k = gr.Slider(1, MAX_CANDIDATES, value=15, step=1, label="K (candidates per word)", elem_id="aug-k")
        p = gr.Slider(0, 1, value=0.4, step=0.05, label="p (replacement probability)", elem_id="aug-p")
        seed = gr.Number(value=0, precision=0, minimum=0, label="seed", elem_id="aug-seed")
    run = gr.Button("Augment", variant="primary", elem_id="aug-run")
    result = gr.HTML(elem_id="aug-sentence-result")

    @failing
    def augment(text: str, text2: str, n: float, k_: float, p_: float, seed_: float) -> str:
        return sentence_html(models, text, text2, int(n), int(k_), float(p_), int(seed_ or 0))

    run.click(augment, [first, second, variants, k, p, seed], result)
    first.submit(augment, [first, second, variants, k, p, seed], result)


def sentence_html(models: Models, text: str, text2: str, n: int, k: int, p: float, seed: int) -> str:
    """Routes and candidates of each text, then the sampled variants with their changes."""
    from tinyaug.augment.engine import Example, Stats
    from tinyaug.pipelines.augmentation.inspect import change_segments

    texts = tuple(t.strip() for t in (text, text2) if t and t.strip())
    if not texts:
        raise TinyaugError("type a sentence first")
    if any(len(t) > MAX_SENTENCE_CHARS for t in texts):
        raise TinyaugError(f"a sentence of at most {MAX_SENTENCE_CHARS} characters, please")
    recipe = Recipe(variants_per_example=min(max(n, 0), MAX_VARIANTS), candidates_per_word=min(max(k, 1), MAX_CANDIDATES),
                    replace_prob=p, seed=max(seed, 0))
    augmenter = models.augmenter(recipe)
    plans = augmenter.plan(list(texts))
    parts = [f"<h4>sentence {i + 1}</h4>{plan_html(plan)}" for i, plan in enumerate(plans)]
    found = augmenter.sample(Example(0, texts), plans, Stats())
    columns = [f"text{i + 1}" for i in range(len(texts))]
    rows = []
    for variant in found[1:]:
        changes = [{**change.to_dict(), "column": columns[change.column]} for change in variant.changes]
        rows.append("<li>" + "<br>".join(segments_html(change_segments(t, changes, col))
                                         for t, col in zip(variant.texts, columns)) + "</li>")
    parts.append(f"<h4>{len(found) - 1} distinct variants (N={recipe.variants_per_example}, seed {recipe.seed})</h4>"
                 f"<ol>{''.join(rows)}</ol>")
    return "".join(parts)


def launch(app: Any, host: str, port: int, block: bool = True, auth: tuple[str, str] | None = None) -> Any:
    """Serve ``app`` on ``host:port`` (checked first: one line if it cannot be bound), behind
    ``guard.Guard`` (no uploads or file routes, bounded bodies); ``auth``: (user, password) to ask for.
    Build and launch inside ``guard.private_temp_dir()``, as the command does, to keep Gradio's
    files in a folder of their own that goes when the app stops."""
    import gradio as gr
    from starlette.middleware import Middleware

    check_port(host, port)
    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    return app.launch(server_name=host, server_port=port, share=False, inbrowser=False, quiet=True,
                      prevent_thread_lock=not block, show_error=True, ssr_mode=False, theme=theme,
                      css=CSS + HIDDEN_CSS, head=CLICK_JS, footer_links=[], auth=auth,
                      app_kwargs={"middleware": [Middleware(Guard)]}, max_file_size=0,
                      enable_monitoring=False, mcp_server=False, pwa=False)
