"""Keypoint geometry in numpy: the animal's body frame, a skeleton, what a likelihood means."""
