"""The training objective: every loss term of a step, built once from the config.

:class:`Objective` holds which terms are on and their weights; :meth:`Objective.terms`
turns one batch of frame pairs into a dict of named, weighted scalar losses. The loop
sums them; the names go to the progress events and the loss history.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from bkind_model.config import Config
from bkind_model.frames.dissimilarity import structural_dissimilarity
from bkind_model.model.network import BKinD
from bkind_model.train.losses import (
    equivariance_loss,
    off_animal_mass,
    reconstruction_loss,
    separation_loss,
)


@dataclass(frozen=True)
class Objective:
    """Loss terms and weights of a run.

    Attributes
    ----------
    reconstruction : str
        Reconstruction loss kind (see :func:`reconstruction_loss`).
    animal_prior : float
        Weight of the heatmap mass off the animal (0 without masks).
    target_masked : bool
        Whether the reconstruction counts only on the animal (``masks.use == "target"``).
    separation_weight, separation_sigma : float
        Weight and width (normalised units) of the keypoint separation term.
    equivariance_weight : float
        Weight of the rotation equivariance term.
    curriculum_steps : int
        Separation and equivariance start after this many steps.
    """

    reconstruction: str
    animal_prior: float
    target_masked: bool
    separation_weight: float
    separation_sigma: float
    equivariance_weight: float
    curriculum_steps: int

    @classmethod
    def from_config(cls, config: Config) -> Objective:
        """The objective a config asks for."""
        masks = config.masks
        return cls(
            reconstruction=config.reconstruction_loss,
            animal_prior=masks.animal_prior if masks is not None else 0.0,
            target_masked=masks is not None and masks.use == "target",
            separation_weight=config.separation_weight,
            separation_sigma=config.separation_sigma,
            equivariance_weight=config.equivariance_weight,
            curriculum_steps=config.curriculum_steps,
        )

    def terms(
        self,
        model: BKinD,
        first: Tensor,
        second: Tensor,
        animals: tuple[Tensor, Tensor] | None,
        step: int,
        quarter_turns: int,
        features: list[Tensor] | None = None,
    ) -> dict[str, Tensor]:
        """The weighted loss terms of one batch.

        Parameters
        ----------
        model : BKinD
            The network (in training mode).
        first, second : Tensor
            ``(B, 3, H, W)`` the two frames of each pair, in [0, 1].
        animals : tuple of Tensor or None
            ``(B, 1, H, W)`` animal masks of both frames (1 on the animal); None unmasked.
        step : int
            Steps done before this one (for the curriculum).
        quarter_turns : int
            Rotation (1-3 quarter turns) of the equivariance term, drawn by the caller's
            generator so runs are reproducible.
        features : list of Tensor, optional
            The frozen encoder's features of ``first`` then ``second``, computed ahead
            (:class:`~bkind_model.train.cached.CachedPairSampler`).

        Returns
        -------
        dict of str to Tensor
            Scalar terms: ``reconstruction`` always; ``animal_prior``, ``separation`` and
            ``equivariance`` when on.
        """
        target = structural_dissimilarity(first, second)
        out = model(first, second, features)
        keep = animals[0] * animals[1] if animals is not None and self.target_masked else None
        terms = {
            "reconstruction": reconstruction_loss(
                self.reconstruction, out.reconstruction.float(), target, keep
            )
        }
        if animals is not None and self.animal_prior > 0:
            terms["animal_prior"] = (
                self.animal_prior
                * 0.5
                * (
                    off_animal_mass(out.keypoints_a.probability.float(), animals[0])
                    + off_animal_mass(out.keypoints_b.probability.float(), animals[1])
                )
            )
        late = step >= self.curriculum_steps
        if late and self.separation_weight > 0:
            both = torch.cat([out.keypoints_a.mean, out.keypoints_b.mean])
            terms["separation"] = self.separation_weight * separation_loss(
                both, self.separation_sigma
            )
        if late and self.equivariance_weight > 0:
            rotated = model.keypoints(torch.rot90(second, quarter_turns, dims=(2, 3)))
            terms["equivariance"] = self.equivariance_weight * equivariance_loss(
                out.keypoints_b, rotated, quarter_turns
            )
        return terms
