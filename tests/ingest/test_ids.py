"""Event ids made in bulk: valid v4 UUIDs, unique, and never the same in a forked child."""

from __future__ import annotations

import os
import uuid

from netra_analytics.ingest.ids import ID_BATCH, new_event_id


def test_ids_are_canonical_version_4_uuids() -> None:
    for _ in range(3 * ID_BATCH):
        text = new_event_id()
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # canonical: lower case, dashes where they belong
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_ids_are_unique_and_their_random_bits_vary() -> None:
    ids = [new_event_id() for _ in range(20 * ID_BATCH)]
    assert len(set(ids)) == len(ids)
    # Each of the 122 random bits takes both values over 5,120 ids (a stuck bit would not).
    ints = [uuid.UUID(i).int for i in ids]
    fixed = (0xF << 76) | (0x3 << 62)  # version and variant bits
    for bit in range(128):
        if not (fixed >> bit) & 1:
            assert 0 < sum((n >> bit) & 1 for n in ints) < len(ints), bit


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    new_event_id()  # the parent holds a batch with ids left in it
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send its next ids to the parent and leave at once
        os.write(write, "".join(new_event_id() for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    child = os.read(read, 4096).decode()
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0
    child_ids = {child[i : i + 36] for i in range(0, len(child), 36)}
    parent_ids = {new_event_id() for _ in range(ID_BATCH)}
    assert len(child_ids) == 10 and not child_ids & parent_ids
