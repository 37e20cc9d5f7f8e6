"""bench/storage.py run small: both sides upload through a real console and moto server, the
console's side as the upload page does it (its part size, concurrency and signing batches), the
figures printed with their spread — and nothing left behind in its temp folder."""

import re

import pytest

from .test_cleanup import output, processes_using, start

pytestmark = pytest.mark.peer


def test_the_storage_bench_runs_small_alternating_the_sides_and_leaves_nothing(tmp_path):
    args = ["--size-mib", "20", "--rounds", "2", "--warmup-mib", "6", "--part-mib", "5", "--threads", "3"]
    proc, temp = start("storage", tmp_path, *args)
    assert proc.wait(timeout=600) == 0, output(tmp_path)
    text = output(tmp_path)
    # Both sides used what the console hands the browser: 5 MiB parts, 3 at once, presigned 8 per request.
    assert "both sides 5 MiB parts, 3 in flight (console: presigned 8 per request)" in text, text
    assert len(re.findall(r"^\s+[12]\s+[\d.]+\s+[\d.]+\s+[\d.]+x\s+[+-][\d.]+ MB", text, re.M)) == 2, text
    assert re.search(r"ratio console/boto3 per round: median [\d.]+x, spread [\d.]+x\.\.[\d.]+x over 2 rounds", text), text
    assert re.search(r"RSS growth during each 20 MiB upload: max [+-][\d.]+ MB \(bound 10 MB: \w+\)", text), text
    assert "console: 4 parts, checksums verified" in text, text
    assert processes_using(temp) == []
    assert list(temp.iterdir()) == []
