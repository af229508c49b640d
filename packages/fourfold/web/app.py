"""The local web app: one page per paper, server-side rendered from Jinja2 templates.

Every form is validated at the boundary: a bad upload or value re-renders the page with one sentence
that says what to change (``UploadError``, status 400); other refusals (404, 405, 413, 403, 503, a form
that cannot be parsed) and unexpected failures (500) are the app's HTML error page, never JSON or a stack
trace, and never a server path. The guards (hosts, origin, body cap, headers) are in ``security``, the
limits in ``limits``. Everything the app writes lives in one ``Workspace`` folder, removed at shutdown
(SIGTERM and SIGINT included); folders left by earlier runs are removed at start. Page modules are
imported on first use, so the server starts in about a second.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.templating import Jinja2Templates

from fourfold.web.faceblur_routes import add_faceblur_routes
from fourfold.web.jobs import Jobs
from fourfold.web.limits import Limits, body_cap
from fourfold.web.rendering import environment
from fourfold.web.security import TRUSTED_HOSTS, protect
from fourfold.web.uploads import UploadError, has_file, read_matrix, save_upload, text_field, without_paths
from fourfold.web.workspace import Workspace

log = logging.getLogger("fourfold.web")
PAPER_PAGES = ("hierarchical", "scoring", "critical", "faceblur")
FORM_LIMITS = {"max_files": 3, "max_fields": 20}
HTTP_SENTENCES = {
    404: "there is no page at this address",
    405: "this address does not take {method} requests; use the page's form",
}


@dataclass
class Settings:
    root: Path = field(default_factory=Path.cwd)  # where .cache/critical is looked for
    checkpoint_folders: tuple[Path, ...] = ()  # more folders of critical checkpoints (--checkpoints DIR)
    limits: Limits = field(default_factory=Limits)
    temp_parent: Path | None = None  # where the workspace folder is made (default: the system's temp folder)
    hosts: tuple[str, ...] = TRUSTED_HOSTS
    max_pending_jobs: int = 8  # faceblur jobs waiting or running; one more is answered 503
    keep_results: int = 10  # finished faceblur results kept for download


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    limits = settings.limits
    workspace = Workspace(settings.temp_parent)
    jobs = Jobs(workspace.folder("jobs"), keep=settings.keep_results, max_pending=settings.max_pending_jobs)

    def shutdown() -> None:
        jobs.close()
        workspace.close()

    @asynccontextmanager
    async def lifespan(_app):
        yield
        await anyio.to_thread.run_sync(shutdown)

    app = FastAPI(title="fourfold", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    views = Jinja2Templates(env=environment())
    app.state.settings, app.state.jobs, app.state.workspace = settings, jobs, workspace
    stylesheet = views.env.get_template("app/app.css").render(
        shared=views.env.get_template("shared/style.css").render()
    )

    def render(request: Request, name: str, status: int = 200, headers=None, **context) -> HTMLResponse:
        context.setdefault("error", None)
        context.setdefault("warnings", [])
        context = {"pages": PAPER_PAGES, "current": name[:-5], "keep": jobs.keep, **context}
        return views.TemplateResponse(request, f"app/{name}", context, status_code=status, headers=headers)

    def error_page(request: Request, status: int, sentence: str, headers=None) -> HTMLResponse:
        page = request.url.path.strip("/").split("/")[0]
        back = f"/{page}" if page in PAPER_PAGES else "/"
        return render(request, "error.html", status, headers=headers, error=sentence, back=back)

    protect(
        app,
        cap=lambda path: body_cap(path, limits),
        refuse=lambda scope, status, sentence: error_page(Request(scope), status, sentence),
        on_unexpected=lambda scope, err: error_page(
            Request(scope), 500, f"unexpected error: {type(err).__name__}: {without_paths(err)[:300]}"
        ),
        hosts=settings.hosts,
    )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException):
        if err.status_code in HTTP_SENTENCES:
            sentence = HTTP_SENTENCES[err.status_code].format(method=request.method)
        elif err.status_code == 400:  # Starlette's form parser: a malformed multipart body
            sentence = f"the form could not be read ({str(err.detail).rstrip('.')}); send it from the page"
        else:
            sentence = without_paths(err.detail)
        return error_page(request, err.status_code, sentence, headers=err.headers)

    @app.get("/static/app.css")
    async def css():
        return Response(stylesheet, media_type="text/css")

    @app.get("/", response_class=HTMLResponse)
    async def index(request: Request):
        return render(request, "index.html")

    # ------------------------------------------------------------------------------------ hierarchical
    @cache
    def hierarchical_form():
        from fourfold.web.pages import hierarchical as page

        return {"trees": page.SHIPPED_TREES, "metrics": page.BASE_METRICS, "table_mb": limits.table_mb}

    @app.get("/hierarchical", response_class=HTMLResponse)
    async def hierarchical_get(request: Request):
        return render(request, "hierarchical.html", form=hierarchical_form(), values={"metric": "hF_1"})

    @app.post("/hierarchical", response_class=HTMLResponse)
    async def hierarchical_post(request: Request):
        form = await request.form(**FORM_LIMITS)  # the body (capped) before the page's imports
        from fourfold.web.pages import hierarchical as page

        values = {k: text_field(form, k) for k in ("tree", "metric", "logits", "example")}
        try:
            if values["example"]:
                result = await run_in_threadpool(page.alexnet_example, values["metric"])
            else:
                result = await _hierarchical_upload(form, values, workspace, limits.table_mb)
        except UploadError as err:
            return render(
                request, "hierarchical.html", 400, form=hierarchical_form(), values=values, error=str(err)
            )
        return render(request, "hierarchical.html", form=hierarchical_form(), values=values, result=result)

    # ------------------------------------------------------------------------------------------ scoring
    @cache
    def scoring_form():
        from fourfold.scoring import RULES
        from fourfold.web.pages import scoring as page

        overlap = {
            "overlap_bound": page.OVERLAP_BOUND,
            "warn_share": page.WARN_SHARE,
            "refuse_share": page.REFUSE_SHARE,
        }
        return {"learners": page.LEARNERS, "losses": list(RULES), "table_mb": limits.table_mb, **overlap}

    scoring_defaults = {"treatment": "t", "outcome": "y", "learner": "linear", "loss": "tailored"}

    @app.get("/scoring", response_class=HTMLResponse)
    async def scoring_get(request: Request):
        return render(request, "scoring.html", form=scoring_form(), values=scoring_defaults)

    @app.post("/scoring", response_class=HTMLResponse)
    async def scoring_post(request: Request):
        form = await request.form(**FORM_LIMITS)  # the body (capped) before the page's imports
        from fourfold.web.pages import scoring as page

        values = {k: text_field(form, k, default) for k, default in scoring_defaults.items()}
        try:
            with workspace.scratch() as folder:
                path = await save_upload(
                    form.get("table"), folder, what="CSV", suffixes=(".csv",), max_mb=limits.table_mb
                )
                x, t, y, names = await run_in_threadpool(
                    page.read_table, path, values["treatment"], values["outcome"]
                )
            result = await run_in_threadpool(
                page.estimate_ate, x, t, y, names, values["learner"], values["loss"]
            )
        except UploadError as err:
            return render(request, "scoring.html", 400, form=scoring_form(), values=values, error=str(err))
        return render(
            request,
            "scoring.html",
            form=scoring_form(),
            values=values,
            result=result,
            warnings=result.warnings,
        )

    # ----------------------------------------------------------------------------------------- critical
    def model_choices():
        from fourfold.web.pages import critical as page

        return page.find_models(settings.root, settings.checkpoint_folders)

    @app.get("/critical", response_class=HTMLResponse)
    async def critical_get(request: Request):
        choices = await run_in_threadpool(model_choices)
        values = {"a": "", "b": "", "n_digits": "", "model": choices[0].key if choices else ""}
        return render(request, "critical.html", values=values, choices=choices)

    @app.post("/critical", response_class=HTMLResponse)
    async def critical_post(request: Request):
        form = await request.form(**FORM_LIMITS)  # the body (capped) before the page's imports
        from fourfold.web.pages import critical as page

        values = {k: text_field(form, k) for k in ("a", "b", "n_digits", "model")}
        choices = await run_in_threadpool(model_choices)
        try:
            a = page.parse_operand(values["a"], "the first number")
            b = page.parse_operand(values["b"], "the second number")
            n_digits = page.parse_operand(values["n_digits"], "N") if values["n_digits"] else None
            choice = page.choose_model(values["model"], choices)
            result = await run_in_threadpool(page.analyse, a, b, n_digits, choice)
        except UploadError as err:
            return render(request, "critical.html", 400, values=values, choices=choices, error=str(err))
        return render(request, "critical.html", values=values, choices=choices, result=result)

    add_faceblur_routes(app, render, error_page, jobs, workspace, limits)
    return app


async def _hierarchical_upload(form, values: dict, workspace: Workspace, max_mb: float):
    from fourfold.web.pages import hierarchical as page

    with workspace.scratch() as folder:
        tree_path = None
        if has_file(form.get("tree_file")):
            tree_path = await save_upload(
                form.get("tree_file"), folder, what="tree JSON", suffixes=(".json",), max_mb=max_mb
            )
        tree, tree_name = await run_in_threadpool(
            page.load_tree, values["tree"] or "tieredimagenet_h", tree_path
        )
        probs_path = await save_upload(
            form.get("probs"), folder, what="probabilities", suffixes=(".npy", ".csv"), max_mb=max_mb
        )
        probs = await run_in_threadpool(read_matrix, probs_path, what="probabilities")
        labels = None
        if has_file(form.get("labels")):
            labels_path = await save_upload(
                form.get("labels"), folder, what="labels", suffixes=(".npy", ".csv"), max_mb=max_mb
            )
            labels = await run_in_threadpool(page.read_labels, labels_path, len(probs), tree.n_leaves)
    return await run_in_threadpool(
        page.decode_and_score,
        tree,
        tree_name,
        probs,
        values["metric"] or "hF_1",
        logits=bool(values["logits"]),
        labels=labels,
        source="your file",
    )
