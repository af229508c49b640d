"""The faceblur page's HTTP side: the upload form, job pages with progress and a cancel button, and the
result files (downloads say ``Content-Disposition: attachment``).

An upload is checked in this order, cheapest first: options, a file is there, the queue has room (else
503 with Retry-After), its size while it is copied, its pixels (and for a video its duration and frames x
pixels) from the header; only then does a job decode it. A still is answered on the same request when its
job ends within ``STILL_WAIT_S``, otherwise (and for every video) the browser goes to the job's page.
"""

from __future__ import annotations

import asyncio
import shutil
from functools import cache
from pathlib import Path

from fastapi import Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from fourfold.web.jobs import Jobs, QueueFull
from fourfold.web.limits import Limits, check_still, check_video, probe_video
from fourfold.web.uploads import UploadError, has_file, save_upload, text_field
from fourfold.web.workspace import Workspace

STILL_WAIT_S = 30.0
DEFAULTS = {"method": "centerface", "mode": "blur", "threshold": ""}


def download_name(label: str, output: str) -> str:
    """``holiday.jpg`` and ``anonymized.png`` -> ``holiday_anonymized.png``."""
    return f"{Path(label).stem or 'file'}_{output}"


def add_faceblur_routes(app, render, error_page, jobs: Jobs, workspace: Workspace, limits: Limits) -> None:
    @cache
    def page():
        from fourfold.web.pages import faceblur

        return faceblur

    @cache
    def pipelines():
        return page().PipelineCache(limits.detection_pixels)

    def form_context() -> dict:
        return {"methods": page().METHODS, "modes": page().MODES, "limits": limits}

    def job_url(job) -> str:
        return f"/faceblur/jobs/{job.id}"

    @app.get("/faceblur", response_class=HTMLResponse)
    async def faceblur_get(request: Request):
        return render(request, "faceblur.html", form=form_context(), values=DEFAULTS)

    @app.post("/faceblur", response_class=HTMLResponse)
    async def faceblur_post(request: Request):
        form = await request.form(max_files=1, max_fields=10)
        values = {k: text_field(form, k, default) for k, default in DEFAULTS.items()}
        try:
            options = page().parse_options(values["method"], values["mode"], values["threshold"])
            upload = form.get("media")
            if not has_file(upload):
                raise UploadError("choose an image or a video file")
            video = page().is_video(upload.filename)
            jobs.check_room()
            with workspace.scratch() as folder:
                saved = await save_upload(
                    upload,
                    folder,
                    what="video" if video else "image",
                    suffixes=page().ACCEPTED_SUFFIXES,
                    max_mb=limits.video_mb if video else limits.image_mb,
                )
                total = None
                if video:
                    total = check_video(await run_in_threadpool(probe_video, saved), limits)
                else:
                    await run_in_threadpool(check_still, saved, limits)
                job = jobs.create(Path(upload.filename).name)
                try:
                    src = Path(shutil.move(saved, job.folder / f"input{saved.suffix}"))
                except OSError:
                    jobs.discard(job)
                    raise
            job.total = total

            def work(job):
                if video:
                    summary = page().anonymize_clip(src, job.folder, options, pipelines(), job)
                else:
                    summary = page().anonymize_still(src, job.folder, options, pipelines(), limits)
                job.outputs = summary.pop("outputs")
                job.summary = {**summary, "method": options.method, "mode": options.mode}

            done = jobs.submit(job, work, src, errors=(UploadError, ValueError))
            if video:
                return RedirectResponse(job_url(job), status_code=303)
            finished, _ = await asyncio.wait({asyncio.wrap_future(done)}, timeout=STILL_WAIT_S)
            if not finished or job.status != "done":
                if job.status == "failed":
                    raise UploadError(job.error)
                return RedirectResponse(job_url(job), status_code=303)
        except QueueFull as full:
            return error_page(request, 503, str(full), headers={"Retry-After": str(full.retry_after)})
        except UploadError as err:
            return render(request, "faceblur.html", 400, form=form_context(), values=values, error=str(err))
        return render(request, "faceblur.html", form=form_context(), values=values, job=job)

    def gone(request: Request):
        return error_page(
            request,
            404,
            f"this result is gone (the server keeps the last {jobs.keep} finished results while it runs); "
            "upload the file again",
        )

    @app.get("/faceblur/jobs/{job_id}", response_class=HTMLResponse)
    async def faceblur_job(request: Request, job_id: str):
        job = jobs.get(job_id)
        if job is None:
            return gone(request)
        return render(
            request, "faceblur.html", form=form_context(), values=DEFAULTS, job=job, error=job.error
        )

    @app.post("/faceblur/jobs/{job_id}/cancel")
    async def faceblur_cancel(request: Request, job_id: str):
        job = jobs.cancel(job_id)
        if job is None:
            return gone(request)
        return RedirectResponse(job_url(job), status_code=303)

    @app.get("/faceblur/jobs/{job_id}/{name}")
    async def faceblur_file(request: Request, job_id: str, name: str):
        job = jobs.get(job_id)
        if job is None or name not in job.outputs:
            return error_page(request, 404, "no such result file; upload the file again")
        return FileResponse(
            job.outputs[name], filename=download_name(job.label, name), content_disposition_type="attachment"
        )
