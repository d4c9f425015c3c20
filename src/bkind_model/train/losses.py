"""Losses of keypoint discovery: reconstruction, rotation equivariance, separation."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bkind_model.model.efficientnet import pretrained_lite0
from bkind_model.model.keypoints import Keypoints


def reconstruction_loss(
    kind: str, prediction: Tensor, target: Tensor, keep: Tensor | None = None
) -> Tensor:
    """Distance between predicted and true dissimilarity maps.

    Parameters
    ----------
    kind : str
        ``"mse"`` (pixel mean squared error), ``"ssim"`` (MSE + 1 - multi-scale SSIM
        on the maps scaled to [0, 1]), ``"random_features"`` (MSE + feature distance
        in a fixed, randomly initialised CNN) or ``"perceptual"`` (MSE + feature distance
        in the early layers of ImageNet EfficientNet-Lite0).
    prediction, target : Tensor
        ``(B, 1, H, W)`` maps; the target is in [0, 2].
    keep : Tensor, optional
        ``(B, 1, H, W)`` in [0, 1]: where the reconstruction counts (0 on masked pixels,
        off the animal); both maps are multiplied by it.

    Returns
    -------
    Tensor
        Scalar loss.
    """
    if keep is not None:
        prediction, target = prediction * keep, target * keep
    mse = F.mse_loss(prediction, target)
    if kind == "mse":
        return mse
    if kind == "ssim":
        p = (prediction / 2).clamp(0, 1)
        t = (target / 2).clamp(0, 1)
        import piq  # here: piq imports torchvision, ~2 s, for this loss only

        return mse + (1 - piq.ssim(p, t, data_range=1.0, kernel_size=7))
    if kind in ("random_features", "perceptual"):
        net = _feature_net(kind, str(prediction.device))
        loss = mse
        x, y = prediction, target
        for layer in net:
            x, y = layer(x), layer(y)
            loss = loss + F.mse_loss(x, y)
        return loss
    raise ValueError(f"Unknown reconstruction loss {kind!r}.")


@functools.lru_cache(maxsize=4)
def _feature_net(kind: str, device: str) -> nn.ModuleList:
    """The frozen layers of a perceptual loss, each applied to the previous one's output.

    ``"random_features"``: three random conv layers (seeded). ``"perceptual"``: the stem
    and the first three blocks of ImageNet EfficientNet-Lite0 (strides 2, 2, 4, 4), as
    B-KinD compares its reconstructions in VGG's early layers; a map in [0, 2] is shown
    to it as a gray image in [0, 1].
    """
    if kind == "random_features":
        return _random_feature_net(device)
    net = pretrained_lite0(classifier=False)
    stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())
    gray = _GrayImage(net.scale)
    layers = nn.ModuleList([nn.Sequential(gray, stem), *net._blocks[:3]])
    return layers.requires_grad_(False).eval().to(device)


class _GrayImage(nn.Module):
    """``(B, 1, H, W)`` map in [0, 2] -> ``(B, 3, H, W)`` gray image in a network's range."""

    def __init__(self, scale: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        """Scale and repeat the map over three channels."""
        return self.scale((x / 2).expand(-1, 3, -1, -1))


@functools.lru_cache(maxsize=4)
def _random_feature_net(device: str) -> nn.ModuleList:
    """Three frozen random conv layers (seeded), the features of the perceptual loss."""
    generator = torch.Generator().manual_seed(1234)
    layers = nn.ModuleList()
    cin = 1
    for cout in (16, 32, 64):
        conv = nn.Conv2d(cin, cout, 3, stride=2, padding=1)
        nn.init.kaiming_normal_(conv.weight, generator=generator)
        nn.init.zeros_(conv.bias)  # type: ignore[arg-type]  # bias=True by default
        layers.append(nn.Sequential(conv, nn.ReLU()))
        cin = cout
    return layers.requires_grad_(False).to(device)


def rotate_points(uv: Tensor, quarter_turns: int) -> Tensor:
    """Where normalised points go when the image is turned by ``torch.rot90(k, (2, 3))``.

    Parameters
    ----------
    uv : Tensor
        ``(..., 2)`` points ``(u, v)`` in normalised units.
    quarter_turns : int
        ``k`` of ``torch.rot90(image, k, dims=(2, 3))``.

    Returns
    -------
    Tensor
        ``(..., 2)`` the points in the rotated image.
    """
    u, v = uv[..., 0], uv[..., 1]
    for _ in range(quarter_turns % 4):
        u, v = v, -u
    return torch.stack([u, v], -1)


def equivariance_loss(original: Keypoints, rotated: Keypoints, quarter_turns: int) -> Tensor:
    """Keypoints of a rotated image must be the rotated keypoints of the image.

    Parameters
    ----------
    original : Keypoints
        Keypoints of the images (treated as the target: detached).
    rotated : Keypoints
        Keypoints of ``torch.rot90(images, quarter_turns, dims=(2, 3))``.
    quarter_turns : int
        The rotation applied.

    Returns
    -------
    Tensor
        Scalar: mean squared distance in normalised units.
    """
    target = rotate_points(original.mean.detach(), quarter_turns)
    return ((rotated.mean - target) ** 2).sum(-1).mean()


def separation_loss(mean: Tensor, sigma: float) -> Tensor:
    """Pushes keypoints of the same frame apart.

    Parameters
    ----------
    mean : Tensor
        ``(B, K, 2)`` keypoints in normalised units.
    sigma : float
        Length scale in normalised units.

    Returns
    -------
    Tensor
        Scalar: mean over pairs ``i != j`` of ``exp(-d_ij^2 / (2 sigma^2))``.
    """
    k = mean.shape[1]
    if k < 2:
        return mean.new_zeros(())
    d2 = torch.cdist(mean, mean).pow(2)
    off_diagonal = ~torch.eye(k, dtype=torch.bool, device=mean.device)
    return torch.exp(-d2[:, off_diagonal] / (2 * sigma**2)).mean()


def off_animal_mass(probability: Tensor, animal: Tensor) -> Tensor:
    """Mean share of the keypoints' heatmap mass lying off the animal.

    Parameters
    ----------
    probability : Tensor
        ``(B, K, h, w)`` heatmaps, each summing to 1.
    animal : Tensor
        ``(B, 1, H, W)`` in [0, 1], 1 on the animal (input resolution; averaged down to
        the heatmaps').

    Returns
    -------
    Tensor
        Scalar in [0, 1].
    """
    height, width = probability.shape[-2:]
    on = F.adaptive_avg_pool2d(animal.float(), (height, width))
    return (probability * (1 - on)).sum(dim=(2, 3)).mean()
