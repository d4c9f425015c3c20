import json

import pytest

from bkind_model.errors import BKindError
from bkind_model.naming.bodyparts import Bodyparts, BodypartsError

CONFIG = """\
Task: openfield
scorer: Pranav
bodyparts:
- snout
- leftear
- rightear
- tailbase
skeleton:
- - snout
  - leftear
- [leftear, rightear, tailbase]
pcutoff: 0.4
"""


def test_deeplabcut_config_gives_names_and_edges(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    parts = Bodyparts.load(path)
    assert parts.names == ("snout", "leftear", "rightear", "tailbase")
    # A chain of three becomes two edges.
    assert parts.skeleton == (
        ("snout", "leftear"),
        ("leftear", "rightear"),
        ("rightear", "tailbase"),
    )
    assert parts.edge_indices == [(0, 1), (1, 2), (2, 3)]


def test_json_round_trip(tmp_path):
    parts = Bodyparts(("nose", "tail"), (("nose", "tail"),))
    path = parts.save(tmp_path / "bodyparts.json")
    assert json.loads(path.read_text())["bodyparts"] == ["nose", "tail"]
    assert Bodyparts.load(path) == parts


@pytest.mark.parametrize(
    ("names", "edges", "message"),
    [
        ((), (), "at least one"),
        (("a", "a"), (), "named twice: a"),
        (("a", "b"), (("a", "c"),), "unknown bodyparts: c"),
        (("a", "b"), (("a", "a"),), "to itself: a-a"),
    ],
)
def test_bad_definitions_are_refused(names, edges, message):
    with pytest.raises(BodypartsError, match=message):
        Bodyparts(names, edges)


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(BodypartsError, match="not found"):
        Bodyparts.load(tmp_path / "missing.yaml")
    broken = tmp_path / "config.yaml"
    broken.write_text("bodyparts: [snout\n")
    with pytest.raises(BKindError, match=r"config\.yaml: cannot read"):
        Bodyparts.load(broken)
    empty = tmp_path / "other.json"
    empty.write_text('{"skeleton": []}')
    with pytest.raises(BodypartsError, match=r"other\.json: no 'bodyparts'"):
        Bodyparts.load(empty)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.json", '{"bodyparts": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        ("deep.yaml", "bodyparts: " + "[" * 1_500 + "]" * 1_500),
    ],
    ids=["json", "yaml"],
)
def test_nesting_bombs_are_one_line_naming_the_file(tmp_path, name, text):
    """N-bpdeep: a RecursionError traceback before."""
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(BodypartsError, match=rf"{name}: cannot read bodyparts \(.*nested"):
        Bodyparts.load(path)
