"""Config changes that keep the encoder's settings whole."""

import pytest

from bkind_model.config import Config, with_changes
from bkind_model.errors import ConfigError


def test_choosing_an_encoder_brings_its_own_weights_and_frozen_levels():
    pretrained = Config(encoder="efficientnet-lite0", pretrained="imagenet", frozen_levels=4)
    small = Config.from_dict(with_changes(pretrained.to_dict(), {"encoder": "small"}))
    assert (small.pretrained, small.frozen_levels) == (None, 0)
    back = Config.from_dict(with_changes(small.to_dict(), {"encoder": "efficientnet-lite0"}))
    assert (back.pretrained, back.frozen_levels) == ("imagenet", 4)
    named = with_changes(small.to_dict(), {"encoder": "efficientnet-lite0", "frozen_levels": 2})
    assert Config.from_dict(named).frozen_levels == 2
    same = with_changes(pretrained.to_dict(), {"encoder": "efficientnet-lite0", "lr": 1e-3})
    assert same == pretrained.to_dict() | {"lr": 1e-3}


def test_a_plain_update_that_breaks_the_encoder_settings_is_refused():
    pretrained = Config(encoder="efficientnet-lite0", pretrained="imagenet", frozen_levels=4)
    with pytest.raises(ConfigError, match="frozen_levels"):
        Config.from_dict(pretrained.to_dict() | {"encoder": "small", "pretrained": None})


def test_the_command_line_takes_any_setting_as_json_and_its_options_win(tmp_path):
    from bkind_model.cli.main import build_parser
    from bkind_model.cli.options import config_from_args

    def config(*options: str) -> Config:
        argv = ["train", "video.mp4", "--out", str(tmp_path / "run"), *options]
        return config_from_args(build_parser().parse_args(argv))

    default = config()
    assert (default.encoder, default.pretrained, default.frozen_levels) == (
        "efficientnet-lite0",
        "imagenet",
        4,
    )
    assert config("--settings", '{"frozen_levels": 2, "lr": 0.001}').frozen_levels == 2
    assert config("--settings", '{"lr": 0.001}', "--lr", "0.003").lr == 0.003
    small = config("--encoder", "small")
    assert (small.pretrained, small.frozen_levels) == (None, 0)
