"""The public shape of a job: the spec's {status, result: {imageUrl} | {videoUrl, thumbnailUrl}} plus
extra fields (never renamed). Result URLs are signed afresh each time."""

from __future__ import annotations

from typing import Any

from studio402.catalog import Catalog
from studio402.jobs.model import Job, JobStatus
from studio402.storage.base import BlobStore


def _result(job: Job, blobs: BlobStore, ttl: float) -> dict[str, Any] | None:
    if job.status is not JobStatus.COMPLETE or not job.result:
        return None
    if "video" not in job.result and "image" not in job.result:
        return None  # a paid upload slot
    if "video" in job.result:
        video = job.result["video"]
        return {
            "videoUrl": blobs.url(video["key"], ttl),
            "thumbnailUrl": blobs.url(job.result["thumbnail"]["key"], ttl),
            "width": video["width"],
            "height": video["height"],
            "duration": video["duration"],
            "contentType": video["mime"],
        }
    image = job.result["image"]
    return {
        "imageUrl": blobs.url(image["key"], ttl),
        "width": image["width"],
        "height": image["height"],
        "contentType": image["mime"],
    }


def job_view(job: Job, *, blobs: BlobStore, catalog: Catalog, ttl: float) -> dict[str, Any]:
    route = catalog.lookup(job.model, job.operation)
    result = _result(job, blobs, ttl)
    return {
        "jobId": job.id,
        "type": route.job_type,
        "model": job.model,
        "operation": job.operation,
        "status": job.status.value,
        "progress": job.progress,
        "result": result,
        "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
        "refund": job.refund,
        "backend": job.backend,
        "payment": {"status": "settling"} if job.held else None,
        "createdAt": job.created_at,
        "updatedAt": job.updated_at,
        "urlsExpireInSeconds": ttl if result else None,
        "pollIntervalSeconds": route.poll_seconds,
    }
