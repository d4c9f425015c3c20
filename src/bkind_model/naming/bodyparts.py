"""The bodyparts a user names: their names and the skeleton's edges.

Read from a DeepLabCut ``config.yaml`` (its ``bodyparts`` and ``skeleton``, so a project's
definitions are reused as they are) or from a JSON file ``{"bodyparts": [...],
"skeleton": [[a, b], ...]}``, which :meth:`Bodyparts.save` writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # PyYAML, a dependency of dask

from bkind_model.errors import BKindError
from bkind_model.io.atomic import atomic_path
from bkind_model.jsonfile import loads_json


class BodypartsError(BKindError):
    """Bodypart definitions are missing, repeated or name edges between unknown parts."""


@dataclass(frozen=True)
class Bodyparts:
    """Named bodyparts and the edges of their skeleton.

    Attributes
    ----------
    names : tuple of str
        The bodyparts, in order (unique, non-empty).
    skeleton : tuple of (str, str)
        Edges between two different bodyparts of ``names`` (drawing only).
    """

    names: tuple[str, ...]
    skeleton: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        names = tuple(str(n).strip() for n in self.names)
        if not names or not all(names):
            raise BodypartsError(
                "bodyparts need at least one non-empty name; add them (e.g. snout, tailbase)."
            )
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise BodypartsError(
                f"bodyparts named twice: {', '.join(repeated)}; give each one a unique name."
            )
        edges = tuple((str(a), str(b)) for a, b in self.skeleton)
        unknown = sorted({n for edge in edges for n in edge if n not in names})
        if unknown:
            raise BodypartsError(
                f"skeleton edges name unknown bodyparts: {', '.join(unknown)}; use names of "
                f"the bodyparts ({', '.join(names)})."
            )
        loops = [f"{a}-{b}" for a, b in edges if a == b]
        if loops:
            raise BodypartsError(
                f"skeleton edges from a bodypart to itself: {', '.join(loops)}; remove them."
            )
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "skeleton", edges)

    @property
    def edge_indices(self) -> list[tuple[int, int]]:
        """The skeleton as pairs of indices into :attr:`names`."""
        return [(self.names.index(a), self.names.index(b)) for a, b in self.skeleton]

    def to_dict(self) -> dict[str, Any]:
        """``{"bodyparts": [...], "skeleton": [[a, b], ...]}`` (JSON-ready)."""
        return {"bodyparts": list(self.names), "skeleton": [list(e) for e in self.skeleton]}

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON, atomically."""
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | Path | None = None) -> Bodyparts:
        """From a mapping with ``bodyparts`` (list) and optionally ``skeleton``.

        DeepLabCut's skeleton may also list chains longer than two; each consecutive
        pair becomes an edge.

        Raises
        ------
        BodypartsError
            If ``bodyparts`` is missing or not a list of names, naming ``source``.
        """
        where = f"{source}: " if source is not None else ""
        names = data.get("bodyparts") if isinstance(data, dict) else None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise BodypartsError(
                f"{where}no 'bodyparts' list of names; write e.g. bodyparts: [snout, tailbase] "
                "(a DeepLabCut config.yaml, or JSON)."
            )
        chains = data.get("skeleton") or []
        if not isinstance(chains, list) or not all(
            isinstance(c, list | tuple) and len(c) >= 2 for c in chains
        ):
            raise BodypartsError(
                f"{where}'skeleton' must be a list of [bodypart, bodypart] edges."
            )
        edges = tuple((str(c[i]), str(c[i + 1])) for c in chains for i in range(len(c) - 1))
        try:
            return cls(tuple(names), edges)
        except BodypartsError as exc:
            raise BodypartsError(f"{where}{exc}") from None

    @classmethod
    def load(cls, path: str | Path) -> Bodyparts:
        """Read a DeepLabCut ``config.yaml`` (``.yaml``/``.yml``) or a JSON file.

        Raises
        ------
        BodypartsError
            If the file is missing, cannot be parsed, or holds no bodyparts.
        """
        path = Path(path)
        if not path.is_file():
            raise BodypartsError(
                f"{path}: bodyparts file not found; pass a DeepLabCut config.yaml or a JSON "
                "file with 'bodyparts'."
            )
        try:
            text = path.read_text(encoding="utf-8")
            is_yaml = path.suffix.lower() in (".yaml", ".yml")
            data = yaml.safe_load(text) if is_yaml else loads_json(text, source=str(path))
        except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError, RecursionError) as exc:
            # PyYAML composes nested lists recursively: a crafted nesting exhausts the stack.
            why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise BodypartsError(
                f"{path}: cannot read bodyparts ({(why.splitlines() or [''])[0][:160]}); fix "
                "the file or write the bodyparts again."
            ) from exc
        return cls.from_dict(data, source=path)
