"""kernel.llm.convert.staged: a model cache appears whole or not at all (no model needed)."""

from __future__ import annotations

import pytest

from kernel.llm.convert import staged


def test_a_cache_is_renamed_into_place_only_when_written_whole(tmp_path):
    target = tmp_path / "models" / "m-int8"
    with pytest.raises(KeyboardInterrupt):
        with staged(target) as tmp:
            (tmp / "model.safetensors").write_bytes(b"half")
            raise KeyboardInterrupt  # Ctrl-C in the middle of a conversion
    assert not target.exists() and list(target.parent.iterdir()) == []  # no half-written folder left
    with staged(target) as tmp:
        (tmp / "model.safetensors").write_bytes(b"whole")
    assert (target / "model.safetensors").read_bytes() == b"whole" and [p.name for p in target.parent.iterdir()] == [
        "m-int8"]
    with staged(target) as tmp:  # another writer lost the race: the first cache stays, its folder goes
        (tmp / "model.safetensors").write_bytes(b"second")
    assert (target / "model.safetensors").read_bytes() == b"whole" and len(list(target.parent.iterdir())) == 1
