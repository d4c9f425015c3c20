"""Masks against shadows and clutter: colour, background model, static masks, in training."""

import colorsys
import json

import numpy as np
import pytest
import torch

from bkind_model.config import Config, MaskSettings
from bkind_model.errors import ConfigError
from bkind_model.frames.background import median_background
from bkind_model.frames.masks import (
    ANIMAL,
    SHADOW,
    STATIC,
    FrameMasker,
    MaskError,
    check_selection,
    colour_mask,
    load_static_mask,
    rgb_to_hsv,
    shadow_and_animal,
)
from bkind_model.frames.sampling import sample_frames
from bkind_model.infer.extraction import extract_to_result
from bkind_model.io.video import open_video
from bkind_model.synthetic import SyntheticConfig, generate, write_sample
from bkind_model.train.loop import Trainer

TINY = dict(image_size=64, batch_size=4, frame_gap=3, n_keypoints=4, width=16, threads=2)


@pytest.fixture(scope="module")
def shadowed():
    """120 frames of the synthetic animal with a cast shadow, with true masks."""
    return generate(SyntheticConfig(height=128, width=128, n_frames=120, seed=3, shadow=True))


@pytest.fixture(scope="module")
def shadowed_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("shadow") / "shadowed.mp4"
    write_sample(path, SyntheticConfig(height=128, width=128, n_frames=90, seed=3, shadow=True))
    return path


def test_hsv_matches_the_standard_library():
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, (200, 3), dtype=np.uint8)
    hue, saturation, value = rgb_to_hsv(colours)
    expected = np.array([colorsys.rgb_to_hsv(*(c / 255.0)) for c in colours])
    np.testing.assert_allclose(saturation, expected[:, 1], atol=1e-5)
    np.testing.assert_allclose(value, expected[:, 2], atol=1e-5)
    wrapped = np.minimum(
        np.abs(hue - expected[:, 0] * 360), 360 - np.abs(hue - expected[:, 0] * 360)
    )
    assert wrapped.max() < 1e-3


def test_colour_range_wraps_through_red_and_drops_specks():
    frame = np.full((1, 40, 40, 3), 128, np.uint8)
    frame[0, 10:20, 10:20] = (220, 30, 40)  # red with hue ~357 degrees
    frame[0, 30, 30] = (220, 30, 40)  # a one-pixel speck of the same colour
    frame[0, 14, 14] = (128, 128, 128)  # a hole in the red square
    settings = MaskSettings(method="colour", hue=(340, 20), saturation=(0.4, 1), value=(0, 1))
    mask = colour_mask(frame, settings)
    assert mask[0, 10:20, 10:20].all()  # the hole is filled
    assert not mask[0, 30, 30] and mask.sum() == 100


def test_background_model_ignores_an_animal_that_rests_a_third_of_the_time():
    video = generate(SyntheticConfig(height=96, width=96, n_frames=600, seed=3, shadow=True))
    frames = video.frames.copy()
    frames[:200] = frames[0]  # the animal rests for the first third
    model = median_background(frames[::10], check=True)
    error = np.abs(model.image.astype(int) - video.background.astype(int)).mean(-1)
    assert np.percentile(error, 99.9) < 12
    assert 0.002 < model.moving_fraction < 0.2


def test_a_still_animal_gives_a_warning_about_the_background():
    still = np.repeat(generate(SyntheticConfig(height=64, width=64, n_frames=1)).frames, 10, 0)
    with pytest.warns(UserWarning, match="never moves"):
        median_background(still, check=True)


def test_background_model_finds_the_cast_shadow(shadowed):
    background = shadowed.background
    shadow, animal = shadow_and_animal(shadowed.frames, background, MaskSettings())
    truth_shadow, truth_animal = shadowed.shadow_mask, shadowed.animal_mask
    assert shadow[truth_shadow].mean() > 0.9  # most shadow found
    floor = ~truth_shadow & ~truth_animal
    assert shadow[floor].mean() < 0.01 and animal[floor].mean() < 0.01
    assert animal[truth_animal].mean() > 0.6


def test_masker_keeps_only_the_animal(shadowed):
    background = shadowed.background
    masker = FrameMasker(MaskSettings(use="fill"), background)
    frames = shadowed.frames[:10]
    labels = masker.labels(frames)
    off_animal = labels != ANIMAL
    assert (labels == SHADOW).any() and (~off_animal).any()
    filled, animal = masker.apply(frames)
    np.testing.assert_array_equal(animal, ~off_animal)
    expected = np.broadcast_to(background, frames.shape)[off_animal]
    np.testing.assert_array_equal(filled[off_animal], expected)  # shadows, rims: all gone
    np.testing.assert_array_equal(filled[~off_animal], frames[~off_animal])
    black, _ = FrameMasker(MaskSettings(use="black"), background).apply(frames)
    assert (black[off_animal] == 0).all()
    same, keep = FrameMasker(MaskSettings(use="target"), background).apply(frames)
    np.testing.assert_array_equal(same, frames)
    np.testing.assert_array_equal(keep, ~off_animal)


def test_static_mask_file_is_checked_against_the_video(tmp_path):
    from PIL import Image

    drawn = np.zeros((48, 64), np.uint8)
    drawn[:5] = 255
    Image.fromarray(drawn).save(tmp_path / "walls.png")
    mask = load_static_mask(tmp_path / "walls.png", (48, 64))
    assert mask.dtype == bool and mask[:5].all() and not mask[5:].any()
    with pytest.raises(MaskError, match="64x48 px but the video is 128x96 px"):
        load_static_mask(tmp_path / "walls.png", (96, 128))
    with pytest.raises(MaskError, match="cannot read"):
        load_static_mask(tmp_path / "missing.npy", (48, 64))


def test_a_selection_of_nothing_or_everything_is_reported():
    with pytest.warns(UserWarning, match=r"selects nothing \(0.00%"):
        check_selection(np.zeros((10, 10), bool), "The colour range", "widen it.")
    with pytest.warns(UserWarning, match="selects everything"):
        check_selection(np.ones((10, 10), bool), "The colour range", "narrow it.")


def test_mask_settings_travel_with_the_config():
    config = Config(masks=MaskSettings(method="colour", hue=(350, 10), use="target"))
    again = Config.from_dict(json.loads(json.dumps(config.to_dict())))  # as checkpoints store it
    assert again == config and again.masks.hue == (350.0, 10.0)
    with pytest.raises(ConfigError, match="shadow_ratio"):
        MaskSettings(shadow_ratio=(0.9, 0.5))
    with pytest.raises(ConfigError, match="Unknown mask settings"):
        Config.from_dict(Config().to_dict() | {"masks": {"shadow": 1}})


def test_sample_frames_spreads_over_the_video(shadowed_video):
    with open_video(shadowed_video) as source:
        frames = sample_frames(source, 10)  # one decoding pass
        assert frames.shape == (10, 128, 128, 3)
        np.testing.assert_array_equal(frames[-1], source[89])
        few = sample_frames(source, 3)  # a seek each: frames 0, 44 (rounded 44.5), 89
        np.testing.assert_array_equal(few, source[[0, 44, 89]])


@pytest.mark.slow
def test_training_with_masks_saves_them_and_extraction_uses_them(shadowed_video, tmp_path):
    masks = MaskSettings(use="target")
    trainer = Trainer([shadowed_video], tmp_path / "run", Config(steps=2, masks=masks, **TINY))
    animal, _ = trainer.batches[0].pairs.animals
    assert animal.shape == (4, 1, 64, 64) and 0 < float(animal.mean()) < 1
    for _ in trainer.run():
        pass
    state = torch.load(trainer.checkpoint_path, weights_only=True)
    assert state["mask_background"].shape == (*trainer.letterbox.resized_size, 3)
    result = extract_to_result(trainer.checkpoint_path, shadowed_video, tmp_path / "r.h5")
    assert result.metadata["config"]["masks"]["use"] == "target"
    assert np.isfinite(result.keypoints).all()


@pytest.mark.slow
def test_a_static_mask_of_the_wrong_size_stops_training_clearly(shadowed_video, tmp_path):
    np.save(tmp_path / "static.npy", np.ones((10, 10), bool))
    masks = MaskSettings(static_mask=str(tmp_path / "static.npy"))
    with pytest.raises(MaskError, match="10x10 px but the video is 128x128 px"):
        Trainer([shadowed_video], tmp_path / "run", Config(steps=1, masks=masks, **TINY))


def test_static_mask_labels_pixels_on_every_frame(shadowed, tmp_path):
    static = np.zeros((128, 128), bool)
    static[:, :8] = True
    masker = FrameMasker(MaskSettings(), shadowed.background, static)
    labels = masker.labels(shadowed.frames[:3])
    assert (labels[:, :, :8] == STATIC).all() and (labels[:, :, 8:] != STATIC).all()
    assert (labels == ANIMAL).any()


@pytest.mark.slow
def test_resuming_with_other_masks_is_refused(shadowed_video, tmp_path):
    from bkind_model.errors import CheckpointError

    trainer = Trainer([shadowed_video], tmp_path / "run", Config(steps=1, **TINY))
    for _ in trainer.run():
        pass
    with pytest.raises(CheckpointError, match="masks"):
        Trainer([shadowed_video], tmp_path / "run", Config(steps=2, masks=MaskSettings(), **TINY))


def test_off_animal_mass_is_the_heatmap_share_off_the_animal():
    from bkind_model.train.losses import off_animal_mass

    probability = torch.zeros(1, 2, 4, 4)
    probability[0, 0, 0, 0] = 1.0  # keypoint 0 on the animal
    probability[0, 1, 3, 3] = 1.0  # keypoint 1 off it
    animal = torch.zeros(1, 1, 8, 8)
    animal[..., :2, :2] = 1.0
    assert float(off_animal_mass(probability, animal)) == pytest.approx(0.5)


@pytest.mark.slow
def test_the_animal_prior_is_a_training_term(shadowed_video, tmp_path):
    masks = MaskSettings(animal_prior=0.1)
    trainer = Trainer([shadowed_video], tmp_path / "run", Config(steps=2, masks=masks, **TINY))
    losses = [event.losses for event in trainer.run()]
    assert all(0 < step["animal_prior"] <= 0.1 for step in losses)


def test_a_static_mask_that_ignores_everything_is_refused(tmp_path):
    path = tmp_path / "all.npy"
    np.save(path, np.ones((40, 50), np.uint8))
    with pytest.raises(MaskError, match="nothing left to train on"):
        load_static_mask(path, (40, 50))
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(MaskError, match="cannot read the static mask"):
        load_static_mask(tmp_path / "text.png", (40, 50))
