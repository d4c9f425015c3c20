"""Keypoint geometry in numpy: the animal's body frame and what a likelihood means."""
