"""The frame cache stays under its cap (least recently used first) and `bkind cache` shows
and clears it."""

from __future__ import annotations

import os
import time

import pytest

from bkind_model.cli.main import main
from bkind_model.errors import ConfigError
from bkind_model.frames.cache import MAX_GB_ENV, FrameCache, max_cache_bytes
from bkind_model.io.video import open_video

DAY = 86400.0


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """An empty cache folder of this test's own."""
    monkeypatch.setenv("BKIND_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _build(video, side: int) -> FrameCache:
    with open_video(video) as source:
        return FrameCache.build(source, (side, side))


def _aged(cache: FrameCache, days: float) -> os.stat_result:
    """Make ``cache``'s last use ``days`` ago and close it; its file's stat."""
    then = time.time() - days * DAY
    os.utime(cache.path, (then, then))
    del cache.frames
    return os.stat(cache.path)


def test_the_least_recently_used_caches_go_first_and_open_ones_stay(tiny_video, monkeypatch):
    # 240 frames of 8x8, 12x12, 16x16 (x3 bytes): 46, 104 and 184 kB
    small, middle = _build(tiny_video, 8), _build(tiny_video, 12)
    paths = small.path, middle.path
    _aged(small, 2), _aged(middle, 1)
    del small, middle  # closed: evictable
    reopened = _build(tiny_video, 8)  # a use: now the most recent
    assert reopened.path == paths[0] and reopened.path.stat().st_mtime > time.time() - DAY
    monkeypatch.setenv(MAX_GB_ENV, str(300e3 / 1e9))  # room for 8x8 and 16x16 only
    large = _build(tiny_video, 16)
    assert (paths[0].exists(), paths[1].exists(), large.path.exists()) == (True, False, True)
    monkeypatch.setenv(MAX_GB_ENV, "0")  # nothing fits: only what this process has open
    again = _build(tiny_video, 12)
    assert all(cache.path.exists() for cache in (reopened, large, again))
    del reopened
    _build(tiny_video, 4)
    assert not paths[0].exists() and large.path.exists() and again.path.exists()


@pytest.mark.parametrize("value", ["-1", "nan", "lots"])
def test_the_cap_must_be_a_size(monkeypatch, value):
    monkeypatch.setenv(MAX_GB_ENV, value)
    with pytest.raises(ConfigError, match=f"{MAX_GB_ENV}='{value}' is not a size in GB"):
        max_cache_bytes()
    monkeypatch.setenv(MAX_GB_ENV, "inf")
    assert max_cache_bytes() == float("inf")


def test_bkind_cache_info_and_clear(tiny_video, cache, capsys):
    old, recent = _build(tiny_video, 8), _build(tiny_video, 12)
    old_size, recent_size = _aged(old, 10).st_size, _aged(recent, 0).st_size
    old, recent = old.path, recent.path  # the caches are closed
    (index,) = (cache / "index").iterdir()  # the video's frame index, written when opened
    foreign = cache / "frames" / "notes.txt"
    foreign.write_text("not ours")
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert f"location: {cache}\n" in out
    assert f"frames: 2 entries, {(old_size + recent_size) / 1e9:.2f} GB" in out
    assert "index: 1 entries" in out and "total: 3 entries" in out
    assert "capped at 5.00 GB" in out
    assert main(["cache", "clear", "--older-than", "7"]) == 0
    assert "removed 1 entries" in capsys.readouterr().out
    assert not old.exists() and recent.exists() and index.exists()
    assert main(["cache", "clear"]) == 0
    assert "removed 2 entries" in capsys.readouterr().out
    assert [path.name for path in cache.rglob("*") if path.is_file()] == ["notes.txt"]
    assert main(["cache", "clear", "--older-than", "-2"]) == 2
