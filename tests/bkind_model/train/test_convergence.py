"""Convergence verdicts from hand-made keypoint histories."""

import torch

from bkind_model.train.convergence import CONVERGED, IMPROVING, STUCK, ConvergenceMonitor


def _monitor():
    foreground = torch.zeros(4, 32, 32, dtype=torch.bool)
    foreground[:, 4:12, 20:28] = True  # the animal, top right
    return ConvergenceMonitor(foreground, (32, 32), patience=3, calm_px=0.5)


def _points(u, v, n=4, k=3):
    return torch.tensor([u, v]).expand(n, k, 2).clone()


SHARP = torch.eye(2).expand(4, 3, 2, 2) * 1e-4


def test_keypoints_at_the_centre_are_stuck():
    report = _monitor().check(100, _points(0.0, 0.0), SHARP)
    assert report.verdict == STUCK
    assert report.on_animal == 0.0
    assert "frame gap" in report.hint


def test_calm_keypoints_on_the_animal_converge():
    monitor = _monitor()
    on_animal = _points(0.5, -0.5)  # pixel (24, 8)
    verdicts = [monitor.check(100 * i, on_animal, SHARP).verdict for i in range(1, 5)]
    assert verdicts[0] == IMPROVING
    assert verdicts[-1] == CONVERGED
    assert monitor.history[-1].on_animal == 1.0
    assert monitor.history[-1].per_keypoint_on_animal == [1.0, 1.0, 1.0]


def test_moving_keypoints_are_still_improving():
    monitor = _monitor()
    for i in range(5):
        report = monitor.check(100 * i, _points(0.4 + 0.04 * i, -0.5), SHARP)
    assert report.verdict == IMPROVING
    assert report.movement_px > 0.5


def test_diffuse_heatmaps_are_stuck():
    diffuse = torch.eye(2).expand(4, 3, 2, 2) * 0.5
    assert _monitor().check(100, _points(0.5, -0.5), diffuse).verdict == STUCK
