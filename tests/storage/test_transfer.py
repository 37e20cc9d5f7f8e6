"""How a byte stream is cut into parts (pure functions, no peer needed)."""

from apps.storage.transfer import MAX_PARTS, MIB, part_size_for, parts_of


def test_chunks_of_any_size_are_recut_into_exact_parts():
    chunks = [b"a" * 3, b"b" * 10, b"", b"c" * 4]
    parts = [bytes(p) for p in parts_of(chunks, 5)]
    assert parts == [b"aaabb", b"bbbbb", b"bbbcc", b"cc"]
    assert b"".join(parts) == b"".join(chunks)


def test_an_empty_stream_is_one_empty_part_and_an_exact_fit_has_no_empty_tail():
    assert [bytes(p) for p in parts_of([], 4)] == [b""]
    assert [bytes(p) for p in parts_of([b"abcd", b"efgh"], 4)] == [b"abcd", b"efgh"]


def test_part_size_grows_only_when_a_known_size_needs_more_than_10000_parts(settings):
    settings.STORAGE_PART_SIZE = 5 * MIB
    assert part_size_for(None) == part_size_for(1024 * MIB) == 5 * MIB
    huge = 200 * 1024 * MIB  # 200 GiB
    size = part_size_for(huge)
    assert size % MIB == 0 and -(-huge // size) <= MAX_PARTS and size - MIB < -(-huge // MAX_PARTS)
