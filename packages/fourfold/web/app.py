"""The local web app: one page per paper, server-side rendered from Jinja2 templates.

Every form is validated at the boundary: a bad upload or value re-renders the page with a message that
says what to change (``UploadError``); an unexpected failure shows a one-line message, never a stack
trace. Uploads live in a per-request temporary folder that is removed before the response is sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool
from starlette.templating import Jinja2Templates

from fourfold.web.pages import critical as critical_page
from fourfold.web.pages import hierarchical as hierarchical_page
from fourfold.web.pages import scoring as scoring_page
from fourfold.web.rendering import environment
from fourfold.web.uploads import UploadError, has_file, read_matrix, save_upload, scratch_folder

log = logging.getLogger("fourfold.web")
PAPER_PAGES = ("hierarchical", "scoring", "critical")


@dataclass
class Limits:
    """Upload limits in MB; the request limit guards the whole form."""

    request_mb: float = 60.0
    table_mb: float = 20.0  # CSV, NPY, JSON
    image_mb: float = 15.0
    video_mb: float = 50.0
    video_seconds: float = 30.0


@dataclass
class Settings:
    root: Path = field(default_factory=Path.cwd)  # where .cache/critical is looked for
    critical_checkpoint: Path | None = None  # a default checkpoint for the critical page
    limits: Limits = field(default_factory=Limits)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(title="fourfold", docs_url=None, redoc_url=None, openapi_url=None)
    views = Jinja2Templates(env=environment())
    app.state.settings = settings
    pages = list(PAPER_PAGES)

    def render(request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
        context.setdefault("error", None)
        return views.TemplateResponse(
            request, f"app/{name}", {"pages": pages, "current": name[:-5], **context}, status_code=status
        )

    @app.middleware("http")
    async def limit_request_size(request: Request, call_next):
        length = request.headers.get("content-length")
        limit = settings.limits.request_mb
        if length and length.isdigit() and int(length) > limit * 1024 * 1024:
            return render(
                request,
                "error.html",
                413,
                error=(
                    f"the upload is {int(length) / 1024 / 1024:.1f} MB, over the server's {limit:g} MB "
                    "limit; upload a smaller file"
                ),
            )
        return await call_next(request)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception):
        log.exception("unexpected error on %s", request.url.path)
        return render(
            request,
            "error.html",
            500,
            error=f"unexpected error: {type(err).__name__}: {' '.join(str(err).split())[:300]}",
        )

    @app.get("/", response_class=HTMLResponse)
    async def index(request: Request):
        return render(request, "index.html")

    # ------------------------------------------------------------------------------------ hierarchical
    hierarchical_form = {"trees": hierarchical_page.SHIPPED_TREES, "metrics": hierarchical_page.BASE_METRICS}

    @app.get("/hierarchical", response_class=HTMLResponse)
    async def hierarchical_get(request: Request):
        return render(request, "hierarchical.html", form=hierarchical_form, values={"metric": "hF_1"})

    @app.post("/hierarchical", response_class=HTMLResponse)
    async def hierarchical_post(request: Request):
        form = await request.form()
        values = {k: form.get(k, "") for k in ("tree", "metric", "logits", "example")}
        try:
            if values["example"]:
                result = await run_in_threadpool(hierarchical_page.alexnet_example, values["metric"])
            else:
                result = await _hierarchical_upload(form, values, settings.limits.table_mb)
        except UploadError as err:
            return render(
                request, "hierarchical.html", 400, form=hierarchical_form, values=values, error=str(err)
            )
        return render(request, "hierarchical.html", form=hierarchical_form, values=values, result=result)

    # ------------------------------------------------------------------------------------------ scoring
    scoring_form = {"learners": scoring_page.LEARNERS, "losses": list(scoring_page.RULES)}
    scoring_defaults = {"treatment": "t", "outcome": "y", "learner": "linear", "loss": "tailored"}

    @app.get("/scoring", response_class=HTMLResponse)
    async def scoring_get(request: Request):
        return render(request, "scoring.html", form=scoring_form, values=scoring_defaults)

    @app.post("/scoring", response_class=HTMLResponse)
    async def scoring_post(request: Request):
        form = await request.form()
        values = {k: str(form.get(k, "")).strip() or scoring_defaults[k] for k in scoring_defaults}
        try:
            with scratch_folder() as folder:
                path = await save_upload(
                    form.get("table"), folder, what="CSV", suffixes=(".csv",), max_mb=settings.limits.table_mb
                )
                x, t, y, names = scoring_page.read_table(path, values["treatment"], values["outcome"])
            result = await run_in_threadpool(
                scoring_page.estimate_ate, x, t, y, names, values["learner"], values["loss"]
            )
        except UploadError as err:
            return render(request, "scoring.html", 400, form=scoring_form, values=values, error=str(err))
        return render(request, "scoring.html", form=scoring_form, values=values, result=result)

    # ----------------------------------------------------------------------------------------- critical
    def default_checkpoint() -> Path | None:
        return settings.critical_checkpoint or critical_page.cached_model(settings.root)

    @app.get("/critical", response_class=HTMLResponse)
    async def critical_get(request: Request):
        found = default_checkpoint()
        values = {"a": "", "b": "", "n_digits": "2", "checkpoint": str(found) if found else ""}
        return render(request, "critical.html", values=values)

    @app.post("/critical", response_class=HTMLResponse)
    async def critical_post(request: Request):
        form = await request.form()
        values = {k: str(form.get(k, "")).strip() for k in ("a", "b", "n_digits", "checkpoint")}
        try:
            a = critical_page.parse_operand(values["a"], "the first number")
            b = critical_page.parse_operand(values["b"], "the second number")
            n_digits = critical_page.parse_operand(values["n_digits"] or "2", "N")
            checkpoint = Path(values["checkpoint"]).expanduser() if values["checkpoint"] else None
            result = await run_in_threadpool(critical_page.analyse, a, b, n_digits, checkpoint)
        except UploadError as err:
            return render(request, "critical.html", 400, values=values, error=str(err))
        return render(request, "critical.html", values=values, result=result)

    return app


async def _hierarchical_upload(form, values: dict, max_mb: float):
    with scratch_folder() as folder:
        tree_upload = form.get("tree_file")
        tree_path = None
        if has_file(tree_upload):
            tree_path = await save_upload(
                tree_upload, folder, what="tree JSON", suffixes=(".json",), max_mb=max_mb
            )
        tree, tree_name = hierarchical_page.load_tree(values["tree"] or "tieredimagenet_h", tree_path)
        probs_path = await save_upload(
            form.get("probs"), folder, what="probabilities", suffixes=(".npy", ".csv"), max_mb=max_mb
        )
        probs = read_matrix(probs_path, what="probabilities")
        labels = None
        if has_file(form.get("labels")):
            labels_path = await save_upload(
                form.get("labels"), folder, what="labels", suffixes=(".npy", ".csv"), max_mb=max_mb
            )
            labels = hierarchical_page.read_labels(labels_path, len(probs), tree.n_leaves)
    return await run_in_threadpool(
        hierarchical_page.decode_and_score,
        tree,
        tree_name,
        probs,
        values["metric"] or "hF_1",
        logits=bool(values["logits"]),
        labels=labels,
        source="your file",
    )
