"""Uploads and scan roots: zip-slip refused, decompression bombs stopped,
links skipped; paths outside a scan root (.. or symlinks) refused."""

import io
import os
import tarfile
import zipfile

import pytest

from apps.security.errors import ScanError
from apps.security.sources import resolve_in_root, unpack, walk


def make_zip(path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def make_tar(path, members: list[tarfile.TarInfo | tuple[str, bytes]]):
    with tarfile.open(path, "w:gz") as tf:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tf.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def test_zip_unpacks_inside_the_destination(tmp_path):
    archive = make_zip(tmp_path / "ok.zip", {"app/settings.py": b"DEBUG = True\n", "README.md": b"hi"})
    dest = tmp_path / "out"
    assert unpack(archive, dest, "ok.zip") == []
    assert sorted(f.rel for f in walk(dest)) == ["README.md", "app/settings.py"]


@pytest.mark.parametrize("evil", ["../evil.py", "app/../../evil.py", "/etc/cron.d/evil", "C:/evil.py", "..\\evil.py"])
def test_zip_slip_refuses_the_archive(tmp_path, evil):
    archive = make_zip(tmp_path / "evil.zip", {"ok.txt": b"fine", evil: b"owned"})
    with pytest.raises(ScanError, match="outside the unpack directory"):
        unpack(archive, tmp_path / "out", "evil.zip")
    assert not (tmp_path / "evil.py").exists()
    assert not (tmp_path / "out").exists()  # nothing half-unpacked is left behind


def test_tar_slip_and_links_out_are_refused_or_skipped(tmp_path):
    evil = make_tar(tmp_path / "evil.tar.gz", [("ok.txt", b"fine"), ("../../evil.sh", b"owned")])
    with pytest.raises(ScanError, match="zip-slip"):
        unpack(evil, tmp_path / "out", "evil.tar.gz")
    link = tarfile.TarInfo("etc-passwd")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    hard = tarfile.TarInfo("hard")
    hard.type, hard.linkname = tarfile.LNKTYPE, "/etc/shadow"
    archive = make_tar(tmp_path / "links.tar.gz", [("ok.txt", b"fine"), link, hard])
    notes = unpack(archive, tmp_path / "out2", "links.tar.gz")
    assert notes == ["skipped link etc-passwd", "skipped link hard"]
    assert sorted(os.listdir(tmp_path / "out2")) == ["ok.txt"]


def test_decompression_bomb_stops_at_the_total_cap(tmp_path):
    # 64 MB of zeros compress to about 64 KB; the cap is 8 MB.
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("zeros.bin", "w") as fh:
        for _ in range(64):
            fh.write(b"\0" * (1 << 20))
    assert archive.stat().st_size < 1 << 20
    with pytest.raises(ScanError, match="decompression bomb"):
        unpack(archive, tmp_path / "out", "bomb.zip", max_bytes=8 << 20)
    assert not (tmp_path / "out").exists()


def test_too_many_files_are_refused(tmp_path):
    archive = make_zip(tmp_path / "many.zip", {f"f{i}.txt": b"x" for i in range(30)})
    with pytest.raises(ScanError, match="more than 20 files"):
        unpack(archive, tmp_path / "out", "many.zip", max_files=20)


def test_a_plain_file_upload_is_copied(tmp_path):
    src = tmp_path / "upload"
    src.write_bytes(b"token = 1\n")
    unpack(src, tmp_path / "out", "../../settings.py")
    assert [f.rel for f in walk(tmp_path / "out")] == ["settings.py"]


def test_scan_roots_refuse_dotdot_absolute_and_symlinks_out(scan_root, tmp_path):
    root, base = scan_root({"repo/app.py": "x = 1\n"})
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("nope")
    os.symlink(outside, base / "escape")
    os.symlink(base / "repo", base / "inside-link")
    assert resolve_in_root(root.name, "repo")[1] == (base / "repo").resolve()
    assert resolve_in_root(root.name, "inside-link")[1] == (base / "repo").resolve()  # a link that stays inside is fine
    with pytest.raises(ScanError, match=r"contains '\.\.'"):
        resolve_in_root(root.name, "repo/../../outside")
    with pytest.raises(ScanError, match="relative to the scan root"):
        resolve_in_root(root.name, str(outside))
    with pytest.raises(ScanError, match="leads outside the scan root"):
        resolve_in_root(root.name, "escape")
    with pytest.raises(ScanError, match="no scan root named"):
        resolve_in_root("nope", "")
    # walking the root never follows the link out
    assert sorted(f.rel for f in walk(base)) == ["repo/app.py"]


def test_the_gateway_refuses_escaping_paths_as_invalid_input(make_user, actor_of):
    from apps.core.errors import InvalidInput
    from apps.core.gateway import invoke

    with pytest.raises(InvalidInput, match=r"contains '\.\.'"):
        invoke("security.scan_secrets", actor_of(make_user("operator")), {"root": "repos", "path": "../../etc"})
    with pytest.raises(InvalidInput, match=r"either staged \(an uploaded file\) or root"):
        invoke("security.scan_source", actor_of(make_user("operator")), {})
