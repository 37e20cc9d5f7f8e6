from django import forms

from apps.infrastructure.models import Environment
from apps.storage.models import Connection

from .models import ScanRoot

SCAN_KINDS = [
    ("secrets", "Secrets in files"),
    ("history", "Secrets in git history"),
    ("dependencies", "Dependency advisories (lockfiles)"),
    ("source", "Static checks (bandit + Django)"),
    ("engine_image", "Container image on an environment's engine"),
    ("image", "Container image (uploaded docker save / export tar)"),
    ("bucket", "Secrets in a storage bucket"),
]
OPERATION_OF = {
    "secrets": "security.scan_secrets",
    "history": "security.scan_secrets",
    "dependencies": "security.audit_dependencies",
    "source": "security.scan_source",
    "engine_image": "security.scan_image",
    "image": "security.scan_image",
    "bucket": "security.scan_bucket",
}
UPLOAD_OR_ROOT = ("secrets", "history", "dependencies", "source")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


class NewScanForm(forms.Form):
    kind = forms.ChoiceField(choices=SCAN_KINDS, initial="secrets")
    file = forms.FileField(required=False, help_text="A file, .zip or .tar.gz (uploaded images: a docker save or export .tar).")
    root = forms.ChoiceField(required=False, help_text="Or a directory under a scan root.")
    path = forms.CharField(required=False, max_length=500, help_text="Path inside the root; empty = the whole root.")
    environment = forms.ChoiceField(required=False, help_text="Images on an engine: the infrastructure environment.")
    reference = forms.CharField(
        required=False, max_length=300, help_text="Images: the image (app:1.4, app@sha256:…, or the id); uploads: where it came from."
    )
    connection = forms.ChoiceField(required=False, help_text="Buckets: the storage connection.")
    bucket = forms.CharField(required=False, max_length=63, help_text="Buckets: the bucket's name.")
    prefix = forms.CharField(required=False, max_length=1024, help_text="Buckets: only keys under this prefix; empty = the whole bucket.")
    allow_paths = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="Secrets: globs of paths or keys never reported, one per line."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["root"].choices = [("", "—")] + [(r.name, f"{r.name} ({r.path})") for r in ScanRoot.objects.all()]
        self.fields["environment"].choices = [("", "—")] + [(e.name, e.name) for e in Environment.objects.all()]
        self.fields["connection"].choices = [("", "—")] + [(c.name, c.name) for c in Connection.objects.all()]

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if kind == "engine_image":
            if not (data.get("environment") and data.get("reference")):
                raise forms.ValidationError("Choose an environment and give the image reference to scan on its engine.")
        elif kind == "bucket":
            if not (data.get("connection") and data.get("bucket")):
                raise forms.ValidationError("Choose a storage connection and give the bucket to scan.")
        elif kind == "image":
            if not data.get("file"):
                raise forms.ValidationError("Uploaded image scans read a docker save / export archive: upload one.")
        elif bool(data.get("file")) == bool(data.get("root")):
            raise forms.ValidationError("Upload a file or choose a scan root (one of them).")
        if kind == "history" and not data.get("root"):
            raise forms.ValidationError("History scans read a git repository under a scan root.")
        return data

    @property
    def needs_upload(self) -> bool:
        return self.cleaned_data["kind"] in (*UPLOAD_OR_ROOT, "image") and bool(self.cleaned_data.get("file"))

    def params(self, staged: dict | None) -> dict:
        """The scan operation's input; `staged`: the file the page staged (uploads.Staged.as_input())."""
        data = self.cleaned_data
        kind = data["kind"]
        if kind == "engine_image":
            return {"environment": data["environment"], "reference": data["reference"]}
        if kind == "image":
            return {"staged": staged, "reference": data["reference"]}
        if kind == "bucket":
            return {
                "connection": data["connection"],
                "bucket": data["bucket"],
                "prefix": data["prefix"],
                "allow_paths": _lines(data["allow_paths"]),
            }
        params = {"staged": staged} if staged else {"root": data["root"], "path": data["path"]}
        if kind in ("secrets", "history"):
            params["history"] = kind == "history"
            params["allow_paths"] = _lines(data["allow_paths"])
        return params


class TriageForm(forms.Form):
    status = forms.ChoiceField(
        required=False,
        choices=[
            ("", "— keep —"),
            ("open", "open"),
            ("triaged", "triaged"),
            ("accepted", "accepted risk"),
            ("false_positive", "false positive"),
            ("fixed", "fixed"),
        ],
    )
    assignee = forms.CharField(
        required=False, max_length=150, help_text="Username; leave as is to keep, clear and tick 'unassign' to remove."
    )
    unassign = forms.BooleanField(required=False)
    accepted_until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), help_text="Accepted risk: until when.")
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))


class RootForm(forms.Form):
    name = forms.SlugField(max_length=60)
    path = forms.CharField(max_length=500)
    description = forms.CharField(max_length=200, required=False)
