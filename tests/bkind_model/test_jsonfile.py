"""JSON read defensively: damaged or crafted JSON is one ConfigError naming its source."""

from __future__ import annotations

import pytest

from bkind_model.errors import ConfigError
from bkind_model.jsonfile import MAX_JSON_DEPTH, load_json, loads_json


def test_valid_json_round_trips(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text('{"names": ["nose", "[tail]"], "fps": 29.97, "n": 3, "ok": true}')
    assert load_json(path) == {"names": ["nose", "[tail]"], "fps": 29.97, "n": 3, "ok": True}
    assert loads_json(b'\xef\xbb\xbf[1, {"a": null}]', source="bom") == [1, {"a": None}]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested 100000 deep"),
        ("[NaN]", "NaN is not a number"),
        ('{"fps": Infinity}', "Infinity is not a number"),
        ("[1e999]", "1e999 overflows"),
        ('{"a": 1, "a": 2}', "key 'a' appears twice"),
        ('{"a": ', "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_bad_json_is_one_line_naming_the_source(text, problem):
    with pytest.raises(ConfigError, match=problem) as info:
        loads_json(text, source="run/results.bkind.h5 attribute 'config'")
    message = str(info.value)
    assert message.startswith("run/results.bkind.h5 attribute 'config': ")
    assert "\n" not in message


def test_depth_limit_counts_structure_not_strings():
    deep = "[" * MAX_JSON_DEPTH + '"[[[[{{{{"' + "]" * MAX_JSON_DEPTH
    assert loads_json(deep, source="s") is not None
    with pytest.raises(ConfigError, match=f"nested {MAX_JSON_DEPTH + 1} deep"):
        loads_json("[" + deep + "]", source="s")


def test_size_limit_and_missing_file(tmp_path, monkeypatch):
    monkeypatch.setattr("bkind_model.jsonfile.MAX_JSON_BYTES", 10)
    big = tmp_path / "big.json"
    big.write_text("[" + "1," * 20 + "1]")
    with pytest.raises(ConfigError, match=r"big\.json: .* larger than the 10 bytes"):
        load_json(big)
    with pytest.raises(ConfigError, match="larger than the 10 bytes"):
        loads_json("[" + "1," * 20 + "1]", source="text")
    with pytest.raises(ConfigError, match=r"absent\.json: cannot read"):
        load_json(tmp_path / "absent.json")
