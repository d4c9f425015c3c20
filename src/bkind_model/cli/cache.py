"""``bkind cache``: where the frame caches and frame indexes are, their size, clearing them."""

from __future__ import annotations

import argparse
from typing import Any

from bkind_model.cli.options import non_negative_float


def _gb(size: float) -> str:
    return f"{size / 1e9:.2f} GB"


def _cmd_info(args: argparse.Namespace) -> int:
    from bkind_model.frames.cache import MAX_GB_ENV, cache_usage, max_cache_bytes
    from bkind_model.io.frame_index import cache_dir

    usage = cache_usage()
    print(f"location: {cache_dir('frames').parent}")
    for kind, (entries, size) in usage.items():
        print(f"{kind}: {entries} entries, {_gb(size)}")
    entries, size = (sum(values) for values in zip(*usage.values(), strict=True))
    print(f"total: {entries} entries, {_gb(size)}")
    print(f"frame caches capped at {_gb(max_cache_bytes())} (set {MAX_GB_ENV})")
    return 0


def _cmd_clear(args: argparse.Namespace) -> int:
    from bkind_model.frames.cache import clear_cache
    from bkind_model.io.frame_index import cache_dir

    removed, freed = clear_cache(args.older_than)
    print(f"removed {removed} entries ({_gb(freed)}) from {cache_dir('frames').parent}")
    return 0


def add_cache_commands(sub: Any) -> None:
    """Add ``bkind cache info`` and ``bkind cache clear`` to the ``bkind`` parser."""
    cache = sub.add_parser(
        "cache",
        help="the frame caches training builds (size, location; clear them)",
        description="Training caches each video's frames at model scale, and every opened "
        "video's frame index, in $BKIND_CACHE_DIR or the user cache folder (~/.cache/bkind "
        "on Linux). Frame caches are capped at $BKIND_CACHE_MAX_GB (default 5), the least "
        "recently used deleted first; anything deleted is rebuilt when needed.",
    )
    actions = cache.add_subparsers(dest="action", required=True)
    info = actions.add_parser("info", help="location, entries and size of the cache")
    info.set_defaults(func=_cmd_info)
    clear = actions.add_parser("clear", help="delete cached frames and indexes")
    clear.add_argument(
        "--older-than",
        type=non_negative_float,
        metavar="DAYS",
        help="only entries not used for DAYS days (default: all)",
    )
    clear.set_defaults(func=_cmd_clear)
