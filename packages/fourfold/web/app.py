"""The local web app: one page per paper, server-side rendered from Jinja2 templates.

Every form is validated at the boundary: a bad upload or value re-renders the page with a message that
says what to change (``UploadError``); an unexpected failure shows a one-line message, never a stack
trace. Uploads live in a per-request temporary folder that is removed before the response is sent.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.templating import Jinja2Templates

from fourfold.web.jobs import Jobs
from fourfold.web.pages import critical as critical_page
from fourfold.web.pages import faceblur as faceblur_page
from fourfold.web.pages import hierarchical as hierarchical_page
from fourfold.web.pages import scoring as scoring_page
from fourfold.web.rendering import environment
from fourfold.web.uploads import UploadError, has_file, read_matrix, save_upload, scratch_folder

log = logging.getLogger("fourfold.web")
PAPER_PAGES = ("hierarchical", "scoring", "critical", "faceblur")


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
        values = {"a": "", "b": "", "n_digits": "", "checkpoint": str(found) if found else ""}
        return render(request, "critical.html", values=values)

    @app.post("/critical", response_class=HTMLResponse)
    async def critical_post(request: Request):
        form = await request.form()
        values = {k: str(form.get(k, "")).strip() for k in ("a", "b", "n_digits", "checkpoint")}
        try:
            a = critical_page.parse_operand(values["a"], "the first number")
            b = critical_page.parse_operand(values["b"], "the second number")
            n_digits = critical_page.parse_operand(values["n_digits"], "N") if values["n_digits"] else None
            checkpoint = Path(values["checkpoint"]).expanduser() if values["checkpoint"] else None
            result = await run_in_threadpool(critical_page.analyse, a, b, n_digits, checkpoint)
        except UploadError as err:
            return render(request, "critical.html", 400, values=values, error=str(err))
        return render(request, "critical.html", values=values, result=result)

    # ----------------------------------------------------------------------------------------- faceblur
    jobs = Jobs()
    app.state.jobs = jobs
    pipelines = faceblur_page.PipelineCache()
    limits = settings.limits
    faceblur_form = {"methods": faceblur_page.METHODS, "modes": faceblur_page.MODES, "limits": limits}
    faceblur_defaults = {"method": "centerface", "mode": "blur", "threshold": ""}

    @app.get("/faceblur", response_class=HTMLResponse)
    async def faceblur_get(request: Request):
        return render(request, "faceblur.html", form=faceblur_form, values=faceblur_defaults)

    @app.post("/faceblur", response_class=HTMLResponse)
    async def faceblur_post(request: Request):
        form = await request.form()
        values = {k: str(form.get(k, "") or faceblur_defaults[k]).strip() for k in faceblur_defaults}
        try:
            options = faceblur_page.parse_options(values["method"], values["mode"], values["threshold"])
            upload = form.get("media")
            video = has_file(upload) and faceblur_page.is_video(upload.filename)
            with scratch_folder() as folder:
                saved = await save_upload(
                    upload,
                    folder,
                    what="image or video",
                    suffixes=faceblur_page.ACCEPTED_SUFFIXES,
                    max_mb=limits.video_mb if video else limits.image_mb,
                )
                total = None
                if video:
                    total, _ = await run_in_threadpool(faceblur_page.check_clip, saved, limits.video_seconds)
                job = jobs.create(Path(upload.filename).name)
                src = Path(shutil.move(saved, job.folder / f"input{saved.suffix}"))
            job.total = total

            def work(job):
                if video:
                    on_frame = lambda: setattr(job, "done", job.done + 1)  # noqa: E731
                    summary = faceblur_page.anonymize_clip(src, job.folder, options, pipelines, on_frame)
                else:
                    summary = faceblur_page.anonymize_still(src, job.folder, options, pipelines)
                job.outputs = summary.pop("outputs")
                job.summary = {**summary, "method": options.method, "mode": options.mode}

            done = jobs.submit(job, work, src, errors=(UploadError, ValueError))
            if video:
                return RedirectResponse(f"/faceblur/jobs/{job.id}", status_code=303)
            await asyncio.wrap_future(done)
            if job.status == "failed":
                raise UploadError(job.error)
        except UploadError as err:
            return render(request, "faceblur.html", 400, form=faceblur_form, values=values, error=str(err))
        return render(request, "faceblur.html", form=faceblur_form, values=values, job=job)

    @app.get("/faceblur/jobs/{job_id}", response_class=HTMLResponse)
    async def faceblur_job(request: Request, job_id: str):
        job = jobs.get(job_id)
        if job is None:
            return render(
                request,
                "error.html",
                404,
                error="this result is gone (the server keeps the last "
                f"{jobs.keep} results while it runs); upload the file again",
            )
        return render(
            request, "faceblur.html", form=faceblur_form, values=faceblur_defaults, job=job, error=job.error
        )

    @app.get("/faceblur/jobs/{job_id}/{name}")
    async def faceblur_file(request: Request, job_id: str, name: str):
        job = jobs.get(job_id)
        if job is None or name not in job.outputs:
            return render(request, "error.html", 404, error="no such result file; upload the file again")
        return FileResponse(job.outputs[name])

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
