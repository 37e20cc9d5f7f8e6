from django import forms

from .models import ScanRoot

SCAN_KINDS = [
    ("secrets", "Secrets in files"),
    ("history", "Secrets in git history"),
    ("dependencies", "Dependency advisories (lockfiles)"),
    ("source", "Static checks (bandit + Django)"),
    ("image", "Container image (docker save / export tar)"),
]
OPERATION_OF = {
    "secrets": "security.scan_secrets",
    "history": "security.scan_secrets",
    "dependencies": "security.audit_dependencies",
    "source": "security.scan_source",
    "image": "security.scan_image",
}


class NewScanForm(forms.Form):
    kind = forms.ChoiceField(choices=SCAN_KINDS, initial="secrets")
    file = forms.FileField(required=False, help_text="A file, .zip or .tar.gz (images: a docker save or export .tar).")
    root = forms.ChoiceField(required=False, help_text="Or a directory under a scan root (not for images).")
    path = forms.CharField(required=False, max_length=500, help_text="Path inside the root; empty = the whole root.")
    reference = forms.CharField(required=False, max_length=300, help_text="Images: the reference it came from, e.g. app:1.4.")
    allow_paths = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="Secrets: globs never reported, one per line."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["root"].choices = [("", "—")] + [(r.name, f"{r.name} ({r.path})") for r in ScanRoot.objects.all()]

    def clean(self):
        data = super().clean()
        if bool(data.get("file")) == bool(data.get("root")):
            raise forms.ValidationError("Upload a file or choose a scan root (one of them).")
        if data.get("kind") == "image" and not data.get("file"):
            raise forms.ValidationError("Image scans read an uploaded docker save / export archive.")
        if data.get("kind") == "history" and not data.get("root"):
            raise forms.ValidationError("History scans read a git repository under a scan root.")
        return data

    def params(self, upload_id) -> dict:
        data = self.cleaned_data
        kind = data["kind"]
        if kind == "image":
            return {"upload_id": upload_id, "reference": data["reference"]}
        params = {"upload_id": upload_id} if upload_id else {"root": data["root"], "path": data["path"]}
        if kind in ("secrets", "history"):
            params["history"] = kind == "history"
            params["allow_paths"] = [line.strip() for line in data["allow_paths"].splitlines() if line.strip()]
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
