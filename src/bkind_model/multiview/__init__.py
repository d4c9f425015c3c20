"""3D keypoints from several synchronised, calibrated cameras (BKinD-3D).

The cameras (:mod:`~bkind_model.multiview.cameras`: projection with lens distortion, its
inverse, confidence-weighted triangulation), their anipose ``calibration.toml``
(:mod:`~bkind_model.multiview.calibration`), the videos of one session matched to the
cameras (:mod:`~bkind_model.multiview.views`), a synthetic multi-camera test bed with 3D
ground truth (:mod:`~bkind_model.multiview.synthetic`), the 3D model, its training,
extraction and evaluation.

Pixel convention, everywhere in this room as in the 2D engine and OpenCV: ``(x, y)`` with
the centre of the top-left pixel at ``(0, 0)``; world coordinates are those of the
calibration (its units, usually millimetres).
"""
