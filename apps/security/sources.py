"""Where scanned files come from: a directory under an admin-configured scan
root, or an uploaded file or archive unpacked safely into a scratch directory.

Scan roots: the requested path is relative, has no `..` and, once every
symlink is resolved, still lies inside the root. While walking, symlinks are
never followed (a link to /etc inside the root is skipped, not read).

Archives: every member name must stay inside the destination (zip-slip and
absolute names refuse the whole archive), links and devices are skipped, and
the bytes actually written are counted against a total cap so a
decompression bomb stops at the cap whatever its headers claim.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from django.conf import settings

from .errors import ScanError
from .models import ScanRoot, Upload
from .secretscan.engine import SKIP_DIRS

CHUNK = 1 << 20


@dataclass
class Tree:
    """A directory to scan and how findings name it."""

    base: Path
    target: str  # "root:name/path", "upload:name"
    notes: list[str] = field(default_factory=list)


@dataclass
class WalkedFile:
    rel: str
    path: Path
    size: int


def clean_relative(rel: str) -> str:
    """A relative path with no `..`, no absolute start and no NUL, in POSIX form."""
    rel = (rel or "").strip().replace("\\", "/")
    if "\x00" in rel:
        raise ScanError("The path contains a NUL character.")
    pure = PurePosixPath(rel)
    if pure.is_absolute():
        raise ScanError(f"Give a path relative to the scan root, not {rel!r}.")
    if any(part == ".." for part in pure.parts):
        raise ScanError(f"The path {rel!r} contains '..': paths must stay inside the scan root.")
    return str(pure) if rel else ""


def resolve_in_root(root_name: str, rel: str = "") -> tuple[ScanRoot, Path]:
    """The real directory (or file) `rel` names under the scan root, refusing any escape."""
    root = ScanRoot.objects.filter(name=root_name).first()
    if root is None:
        names = ", ".join(ScanRoot.objects.values_list("name", flat=True)) or "none configured"
        raise ScanError(f"There is no scan root named {root_name!r} (roots: {names}). An admin adds roots under Security → Scan roots.")
    rel = clean_relative(rel)
    try:
        base = Path(root.path).resolve(strict=True)
    except OSError:
        raise ScanError(f"The scan root {root.name} ({root.path}) does not exist on this server.") from None
    try:
        target = (base / rel).resolve(strict=True)
    except OSError:
        raise ScanError(f"{rel!r} does not exist under the scan root {root.name}.") from None
    if target != base and base not in target.parents:
        raise ScanError(f"{rel!r} leads outside the scan root {root.name} (through a symlink): refused.")
    return root, target


def walk(base: Path, skip_dirs: set[str] = SKIP_DIRS) -> Iterator[WalkedFile]:
    """Regular files under `base`, sorted, never following symlinks."""
    if base.is_file():
        yield WalkedFile(base.name, base, base.stat().st_size)
        return
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in skip_dirs and not os.path.islink(os.path.join(dirpath, d)))
        for name in sorted(filenames):
            full = Path(dirpath) / name
            st = full.lstat()
            if stat.S_ISREG(st.st_mode):
                yield WalkedFile(full.relative_to(base).as_posix(), full, st.st_size)


# --- uploads ---------------------------------------------------------------------------


class _Budget:
    def __init__(self, max_bytes: int, max_files: int):
        self.max_bytes, self.max_files, self.bytes, self.files = max_bytes, max_files, 0, 0

    def add_file(self) -> None:
        self.files += 1
        if self.files > self.max_files:
            raise ScanError(f"The archive holds more than {self.max_files} files: refused.")

    def add_bytes(self, n: int) -> None:
        self.bytes += n
        if self.bytes > self.max_bytes:
            raise ScanError(
                f"The archive expands past {self.max_bytes >> 20} MB (SECURITY_UNPACK_MAX_MB): unpacking stopped — a decompression bomb?"
            )


def _member_dest(dest: Path, name: str) -> Path:
    """Where an archive member goes; refuses names that leave `dest` (zip-slip)."""
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (pure.parts and ":" in pure.parts[0]):
        raise ScanError(f"The archive member {name!r} would be written outside the unpack directory (zip-slip): archive refused.")
    out = dest.joinpath(*[p for p in pure.parts if p not in ("", ".")])
    if dest.resolve() not in out.resolve().parents:
        raise ScanError(f"The archive member {name!r} would be written outside the unpack directory: archive refused.")
    return out


def _copy(src, out: Path, budget: _Budget) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as fh:
        while chunk := src.read(CHUNK):
            budget.add_bytes(len(chunk))
            fh.write(chunk)


def unpack(archive: Path, dest: Path, original_name: str, *, max_bytes: int | None = None, max_files: int | None = None) -> list[str]:
    """Unpack a zip or tar(.gz/.bz2/.xz) into `dest`, or copy a plain file. Returns notes (skipped links...)."""
    budget = _Budget(
        max_bytes if max_bytes is not None else settings.SECURITY_UNPACK_MAX_MB << 20,
        max_files if max_files is not None else settings.SECURITY_UNPACK_MAX_FILES,
    )
    dest.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    out = _member_dest(dest, info.filename)
                    mode = info.external_attr >> 16
                    if info.is_dir():
                        continue
                    if stat.S_ISLNK(mode):
                        notes.append(f"skipped symlink {info.filename}")
                        continue
                    budget.add_file()
                    with zf.open(info) as src:
                        _copy(src, out, budget)
        elif _is_tar(archive):
            with tarfile.open(archive, "r:*") as tf:
                for member in tf:
                    out = _member_dest(dest, member.name)
                    if member.isdir():
                        continue
                    if not member.isfile():
                        notes.append(f"skipped {'link' if member.issym() or member.islnk() else 'special file'} {member.name}")
                        continue
                    budget.add_file()
                    src = tf.extractfile(member)
                    if src is not None:
                        _copy(src, out, budget)
        else:
            budget.add_file()
            with open(archive, "rb") as src:
                _copy(src, _member_dest(dest, PurePosixPath(original_name).name or "upload"), budget)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise ScanError(f"The upload {original_name!r} could not be unpacked: {exc}.") from None
    except ScanError:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return notes


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def upload_tree(upload_id, user, scratch: Path) -> Tree:
    """The upload `user` made (claimed by their call), unpacked into `scratch`."""
    upload = Upload.objects.filter(pk=upload_id, uploaded_by=user).first() if user is not None else None
    if upload is None or not upload.stored_path.exists():
        raise ScanError("That upload does not exist any more: upload the file again.")
    # The stored file stays until the job ends, however it ends (upload_services.release_upload): a job stopped
    # mid-unpack by its worker's shutdown is not ended, and whatever runs it next needs the file.
    return Tree(scratch, f"upload:{upload.name}", unpack(upload.stored_path, scratch, upload.name))


def root_tree(root_name: str, rel: str) -> Tree:
    root, path = resolve_in_root(root_name, rel)
    rel = clean_relative(rel)
    return Tree(path, f"root:{root.name}/{rel}".rstrip("/"))
