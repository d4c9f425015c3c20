"""JSON from files and stored attributes, read defensively.

Every JSON the engine reads from a file, an HDF5 attribute or an ``.npz`` entry goes
through :func:`loads_json` (or :func:`load_json` for a file on disk): standard JSON,
with limits that turn a damaged or crafted input into one :class:`ConfigError` line
naming the source, instead of a ``RecursionError``, a memory blow-up or a silent
``NaN``:

- at most :data:`MAX_JSON_BYTES` bytes;
- nesting at most :data:`MAX_JSON_DEPTH` deep (counted by scanning brackets, before
  and without recursion);
- no ``NaN``, ``Infinity`` or ``-Infinity`` constants (not JSON, and never meant), nor
  numbers too large for a float (``1e999``);
- no key twice in one object (the later value would silently win).
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from pathlib import Path
from typing import Any

from bkind_model.errors import ConfigError

#: Largest JSON text accepted, in bytes (settings, headers and names are far smaller).
MAX_JSON_BYTES = 16 * 1024 * 1024

#: Deepest nesting of arrays and objects accepted.
MAX_JSON_DEPTH = 64

#: A complete JSON string literal (its brackets are not structure).
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)

#: The structural brackets left once strings are removed.
_BRACKET = re.compile(r"[\[\]{}]")

_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def _depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` in ``text``, brackets inside strings excluded."""
    brackets = _BRACKET.findall(_STRING.sub("", text))
    return max(accumulate(_STEP[b] for b in brackets), default=0)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} overflows a float")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"key {key!r} appears twice in one object")
        result[key] = value
    return result


def loads_json(text: str | bytes, *, source: str) -> Any:
    """Parse the JSON ``text`` read from ``source``, within the module's limits.

    Parameters
    ----------
    text : str or bytes
        The JSON text; bytes are decoded as UTF-8 (a byte-order mark is allowed).
    source : str
        Where the text came from, for the message (``"run/results.bkind.h5 attribute
        'config'"``, ``"bodyparts.json"``).

    Returns
    -------
    Any
        The parsed value (dict, list, str, int, float, bool or None).

    Raises
    ------
    ConfigError
        One line naming ``source`` and the problem: too large, not UTF-8, nested too
        deep, not JSON, a ``NaN``/``Infinity`` constant or overflowing number, or a key twice in one object.
    """
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "replace"))
    if size > MAX_JSON_BYTES:
        raise ConfigError(
            f"{source}: JSON of {size} bytes is larger than the {MAX_JSON_BYTES} bytes "
            "allowed; the file is damaged or not one bkind wrote."
        )
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{source}: not UTF-8 text (byte {exc.start}); save it as UTF-8 JSON."
            ) from exc
    depth = _depth(text)
    if depth > MAX_JSON_DEPTH:
        raise ConfigError(
            f"{source}: JSON nested {depth} deep, more than the {MAX_JSON_DEPTH} allowed; "
            "the file is damaged or not one bkind wrote."
        )
    try:
        return json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            object_pairs_hook=_unique_keys,
        )
    except ValueError as exc:  # JSONDecodeError is a ValueError
        problem = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise ConfigError(f"{source}: not valid JSON ({problem}); fix or rewrite it.") from exc


def load_json(path: str | Path) -> Any:
    """Read and parse the JSON file at ``path`` with :func:`loads_json`'s limits.

    Parameters
    ----------
    path : str or Path
        The JSON file.

    Returns
    -------
    Any
        The parsed value.

    Raises
    ------
    ConfigError
        If the file is missing, unreadable, too large, or not acceptable JSON; the one
        line names the file.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise ConfigError(
                f"{path}: {size} bytes is larger than the {MAX_JSON_BYTES} bytes allowed "
                "for a JSON file; pass the right file."
            )
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"{path}: cannot read the JSON file ({reason}); check the path."
        ) from exc
    return loads_json(data, source=str(path))
