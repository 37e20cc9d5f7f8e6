"""Storage pages: connections, buckets, the object browser, object details, the
streamed upload, downloads through the console and the compliance report.
Object keys always travel in query strings, never in URL paths."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.core.handlers.asgi import ASGIRequest
from django.core.paginator import Paginator
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_POST

from apps.core import operations
from apps.core.errors import InvalidInput, OpsError
from apps.core.gateway import check_permission, validate
from apps.core.web import actor_of, call, console_view

from .client import connect
from .models import Connection
from .services.classification import check_write
from .services.common import Classification
from .services.compliance import to_csv
from .services.direct import endpoint_origin
from .streaming import issue_ticket, stream_url


def _browse_url(connection: str, bucket: str, prefix: str = "") -> str:
    url = reverse("storage:browse", args=[connection, bucket])
    return f"{url}?{urlencode({'prefix': prefix})}" if prefix else url


def _parent(path: str) -> str:
    """The folder holding a key or prefix: `a/b/c` -> `a/b/`, `a/b/` -> `a/`, `a` -> ``."""
    head = path.rstrip("/").rsplit("/", 1)
    return head[0] + "/" if len(head) == 2 else ""


def _crumbs(prefix: str) -> list[tuple[str, str]]:
    """(label, prefix) for each folder of a prefix: `a/b/` -> [("a", "a/"), ("b", "a/b/")]."""
    parts = prefix.split("/")[:-1] if prefix else []
    return [(part or "(empty)", "/".join(parts[: i + 1]) + "/") for i, part in enumerate(parts)]


@console_view
def index(request):
    result = call(request, "storage.connections", {}).result
    page = Paginator(result.connections, 25).get_page(request.GET.get("page"))
    return render(request, "storage/index.html", {"page": page, "can_manage": actor_of(request).has_perm("core.manage_connectors")})


@console_view
def buckets(request, connection: str):
    result = call(request, "storage.buckets", {"connection": connection}).result
    page = Paginator(result.buckets, 50).get_page(request.GET.get("page"))
    return render(request, "storage/buckets.html", {"connection": connection, "page": page})


@console_view
def browse(request, connection: str, bucket: str):
    prefix = request.GET.get("prefix", "")
    params = {"connection": connection, "bucket": bucket, "prefix": prefix, "include_versions": request.GET.get("versions") == "1"}
    if request.GET.get("token"):
        params["token"] = request.GET["token"]
    result = call(request, "storage.list", params).result
    actor = actor_of(request)
    context = {
        "connection": connection,
        "bucket": bucket,
        "prefix": prefix,
        "crumbs": _crumbs(prefix),
        "listing": result,
        "versions": params["include_versions"],
        "next_query": urlencode({"prefix": prefix, "token": result.next_token, **({"versions": "1"} if params["include_versions"] else {})})
        if result.next_token
        else "",
        "first_page": bool(request.GET.get("token")),
        "can_write": actor.has_perm("core.run_write_ops"),
        "can_delete": actor.has_perm("core.request_risky_ops"),
        "prefill": urlencode({"connection": connection, "bucket": bucket, "prefix": prefix}),
    }
    return render(request, "storage/browse.html", context)


@console_view
def object_detail(request, connection: str, bucket: str):
    key = request.GET.get("key", "")
    version_id = request.GET.get("version_id") or None
    ref = {"connection": connection, "bucket": bucket, "key": key, **({"version_id": version_id} if version_id else {})}
    presigned = None
    if request.method == "POST":
        expires = request.POST.get("expires_seconds") or "300"
        presigned = call(request, "storage.download", {**ref, "mode": "presigned", "expires_seconds": expires}).result
    info = call(request, "storage.head", ref).result
    actor = actor_of(request)
    folder = _parent(key)
    context = {
        "connection": connection,
        "bucket": bucket,
        "info": info,
        "presigned": presigned,
        "ref_query": urlencode(ref),
        "back": _browse_url(connection, bucket, folder),
        "can_download": actor.has_perm("storage.download_objects"),
        "can_delete": actor.has_perm("core.request_risky_ops"),
    }
    return render(request, "storage/object.html", context)


@console_view
@require_POST
def delete(request, connection: str, bucket: str):
    params = {"connection": connection, "bucket": bucket}
    for field in ("key", "prefix", "version_id"):
        if request.POST.get(field):
            params[field] = request.POST[field]
    params["all_versions"] = request.POST.get("all_versions") == "on"
    folder = _parent(params.get("prefix") or params.get("key", ""))
    try:
        outcome = call(request, "storage.delete", params, reason=request.POST.get("reason", ""))
    except OpsError as exc:
        messages.error(request, exc.message)
        return redirect(_browse_url(connection, bucket, folder))
    if outcome.status == "pending":
        messages.info(
            request, f"Deleting {outcome.approval.target} needs approval: request #{outcome.approval.pk} is waiting for an approver."
        )
        return redirect(outcome.approval)
    result = outcome.result
    what = "a delete marker was added" if any(d.delete_marker for d in result.deleted) else f"{result.count} deleted"
    messages.success(request, f"{params.get('key') or params.get('prefix')}: {what}.")
    return redirect(_browse_url(connection, bucket, folder))


@console_view
def upload_page(request, connection: str, bucket: str):
    check_permission(operations.get("storage.upload"), actor_of(request))
    conn = get_object_or_404(Connection, name=connection)
    context = {
        "connection": connection,
        "bucket": bucket,
        "direct": conn.direct_uploads,
        "prefix": request.GET.get("prefix", ""),
        "classifications": [c.value for c in Classification],
        "back": _browse_url(connection, bucket, request.GET.get("prefix", "")),
    }
    response = render(request, "storage/upload.html", context)
    if conn.direct_uploads:  # the page's script PUTs the parts to the endpoint
        response._csp_update = {"connect-src": [endpoint_origin(connection, bucket)]}
    return response


def _metadata(text: str) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in text.splitlines() if line.strip()]
    if any(len(p) != 2 for p in pairs):
        raise InvalidInput({"metadata": "one name=value per line"})
    return {name.strip().lower(): value.strip() for name, value in pairs}


def _json_error(exc: OpsError) -> JsonResponse:
    errors = {"errors": exc.errors} if isinstance(exc, InvalidInput) else {}
    return JsonResponse({"error": exc.message, **errors}, status=exc.status_code)


@console_view
@require_POST
def upload_ticket(request, connection: str, bucket: str):
    """Check everything about an upload before its bytes are sent; answer with where to PUT them."""
    op = operations.get("storage.upload")
    fields = ("key", "classification", "encryption", "content_type", "storage_class", "sha256", "size")
    params = {"connection": connection, "bucket": bucket, **{f: request.POST[f] for f in fields if request.POST.get(f)}}
    try:
        check_permission(op, actor_of(request))
        params["metadata"] = _metadata(request.POST.get("metadata", ""))
        data = validate(op, params)
        # Early, so a refused overwrite is said before the file is sent; storage.upload checks again before writing.
        check_write(connect(connection), bucket, data.key, data.classification)
    except OpsError as exc:
        return _json_error(exc)
    return JsonResponse({"url": stream_url(issue_ticket(request.user, data))})


DIRECT_STEPS = {"begin": "storage.begin_upload", "sign": "storage.sign_parts", "complete": "storage.complete_upload",
                "abort": "storage.abort_upload"}  # fmt: skip


@console_view
@require_POST
def upload_direct(request, connection: str, bucket: str, step: str):
    """One step of an upload straight to the bucket (JSON in, JSON out); the browser sends the bytes to the endpoint."""
    if step not in DIRECT_STEPS:
        return JsonResponse({"error": f"Unknown upload step {step!r}."}, status=404)
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return JsonResponse({"error": "Send a JSON object."}, status=400)
    try:
        if isinstance(body.get("metadata"), str):  # the upload form's name=value lines
            body["metadata"] = _metadata(body["metadata"])
        result = call(request, DIRECT_STEPS[step], {**body, "connection": connection, "bucket": bucket}).result
    except OpsError as exc:
        return _json_error(exc)
    response = JsonResponse(result.model_dump(mode="json"))
    response["Cache-Control"] = "no-store"  # presigned URLs: not for any cache
    return response


async def _one_by_one(chunks):
    iterator = iter(chunks)
    while (chunk := await sync_to_async(next, thread_sensitive=False)(iterator, None)) is not None:
        yield chunk


@console_view
def download(request):
    """Stream an object through the console (for people without access to the endpoint)."""
    params = {f: request.GET[f] for f in ("connection", "bucket", "key", "version_id") if request.GET.get(f)}
    result = call(request, "storage.fetch", params).result
    # Under ASGI Django would gather a synchronous iterator into one list first: hand it chunks one at a time.
    chunks = _one_by_one(result.chunks) if isinstance(request, ASGIRequest) else result.chunks
    response = StreamingHttpResponse(chunks, content_type=result.content_type)
    response["Content-Length"] = str(result.size)
    # Only the last path segment becomes the file name; the header encodes it safely (RFC 6266).
    name = result.key.rstrip("/").rsplit("/", 1)[-1]
    response["Content-Disposition"] = content_disposition_header(True, name if name not in ("", ".", "..") else "download")
    response["ETag"] = f'"{result.etag}"'
    return response


@console_view
def compliance(request):
    connections = call(request, "storage.connections", {}).result.connections
    connection = request.GET.get("connection") or (connections[0].name if connections else "")
    report = None
    if connection:
        report = call(request, "storage.compliance_report", {"connection": connection}).result
        fmt = request.GET.get("format")
        if fmt in ("csv", "json"):
            body = to_csv(report) if fmt == "csv" else json.dumps(report.model_dump(mode="json"), indent=2)
            response = HttpResponse(body, content_type="text/csv; charset=utf-8" if fmt == "csv" else "application/json")
            response["Content-Disposition"] = content_disposition_header(True, f"storage-compliance-{connection}.{fmt}")
            return response
    context = {"connections": connections, "connection": connection, "report": report}
    return render(request, "storage/compliance.html", context)
