"""Building images on an environment's engine, from a directory under the
allowed root or from an uploaded context tarball."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from django.conf import settings
from pydantic import BaseModel, Field, model_validator

from apps.core.jobs import Context
from apps.core.operations import Risk, operation

from ..client import LABEL, Engine
from ..errors import InfrastructureError
from .environments import environment_named

TAG_RE = r"^[a-z0-9][a-z0-9._/-]{0,200}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$"


def upload_path(upload: str) -> Path:
    return Path(settings.INFRA_UPLOAD_DIR) / f"{uuid.UUID(upload)}.tar"


def save_upload(chunks) -> str:
    """Store an uploaded build context (a tar, optionally gzipped); returns its id for build_image."""
    upload = str(uuid.uuid4())
    path = upload_path(upload)
    path.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    with path.open("wb") as out:
        for chunk in chunks:
            size += len(chunk)
            if size > settings.INFRA_UPLOAD_MAX_BYTES:
                out.close()
                path.unlink()
                raise InfrastructureError(f"The build context is larger than {settings.INFRA_UPLOAD_MAX_BYTES} bytes.")
            out.write(chunk)
    return upload


def context_directory(relative: str) -> Path:
    root = Path(settings.INFRA_BUILD_ROOT).resolve()
    path = (root / relative).resolve()
    if Path(relative).is_absolute() or not path.is_relative_to(root):
        raise InfrastructureError(f"Build contexts must be directories under {root}.")
    if not (path / "Dockerfile").is_file():
        raise InfrastructureError(f"{relative} has no Dockerfile under {root}.")
    return path


class BuildImageInput(BaseModel):
    environment: str
    tag: str = Field(pattern=TAG_RE, description="repository:tag to give the image.")
    context_dir: str | None = Field(None, description="A directory (with a Dockerfile) under the build root.")
    upload: str | None = Field(None, description="Id of an uploaded context tarball (from the build page).")

    @model_validator(mode="after")
    def _one_source(self):
        if (self.context_dir is None) == (self.upload is None):
            raise ValueError("give either context_dir or upload")
        if self.upload is not None:
            try:
                uuid.UUID(self.upload)
            except ValueError:
                raise ValueError("upload is not an upload id") from None
        return self


class BuildImageOutput(BaseModel):
    tag: str
    image_id: str


@operation("infrastructure.build_image", risk=Risk.WRITE, long=True, target=lambda p: f"{p.environment}/{p.tag}")
def build_image(ctx: Context, params: BuildImageInput) -> BuildImageOutput:
    """Build an image on an environment's engine from a directory under the build root or an uploaded
    context; the build log streams live into the job's log."""
    env = environment_named(params.environment)
    labels = {LABEL + "managed": "true", LABEL + "environment": env.name}
    image_id, error = "", ""
    source = None
    try:
        if params.upload:
            path = upload_path(params.upload)
            if not path.is_file():
                raise InfrastructureError("The uploaded build context is gone (already built, or never uploaded).")
            source = path.open("rb")
            kwargs = {"fileobj": source}
        else:
            kwargs = {"path": str(context_directory(params.context_dir))}
        with Engine(env) as engine:
            for message in engine.build(tag=params.tag, labels=labels, **kwargs):
                if "stream" in message and message["stream"].strip():
                    ctx.log(message["stream"].rstrip())
                if "error" in message:
                    error = message["error"].strip()
                    ctx.log(error, "error")
                if "aux" in message and isinstance(message["aux"], dict):
                    image_id = message["aux"].get("ID", image_id)
    finally:
        if source is not None:
            source.close()
            Path(source.name).unlink(missing_ok=True)
    if error:
        raise InfrastructureError(f"The build of {params.tag} failed: {error}")
    if not image_id:
        raise InfrastructureError(f"The engine finished the build of {params.tag} without reporting an image.")
    return BuildImageOutput(tag=params.tag, image_id=re.sub(r"^sha256:", "", image_id)[:64])


IMAGE_REF_RE = r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,299}$"


class ImageInput(BaseModel):
    environment: str
    image: str = Field(pattern=IMAGE_REF_RE, description="repository:tag, repository@sha256:digest or an image id.")


class ImageInfo(BaseModel):
    environment: str
    id: str = Field(description="The image id (sha256:...): the same bytes whatever tag moves later.")
    tags: list[str]
    created: str
    size: int = Field(description="Bytes, uncompressed.")
    os: str
    architecture: str
    user: str = Field(description="The user the image runs as; empty means root.")
    exposed_ports: list[str]
    env_names: list[str] = Field(description="Names of the environment variables baked in (values are not shown: they may be secrets).")
    label_names: list[str]


@operation("infrastructure.image", risk=Risk.READ, target=lambda p: f"{p.environment}/{p.image}")
def image(ctx: Context, params: ImageInput) -> ImageInfo:
    """Inspect an image on an environment's engine: id, tags, size, the user it runs as, exposed ports, and the
    names (never the values) of its baked-in environment variables and labels. `security.scan_image` reads
    images through this operation."""
    env = environment_named(params.environment)
    with Engine(env) as engine:
        attrs = engine.image(params.image)
    config = attrs.get("Config") or {}
    return ImageInfo(
        environment=env.name,
        id=attrs["Id"],
        tags=list(attrs.get("RepoTags") or []),
        created=str(attrs.get("Created") or ""),
        size=int(attrs.get("Size") or 0),
        os=str(attrs.get("Os") or ""),
        architecture=str(attrs.get("Architecture") or ""),
        user=str(config.get("User") or ""),
        exposed_ports=sorted(config.get("ExposedPorts") or {}),
        env_names=[e.split("=", 1)[0] for e in config.get("Env") or []],
        label_names=sorted(config.get("Labels") or {}),
    )
