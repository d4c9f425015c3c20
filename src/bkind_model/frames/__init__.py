"""Frames on their way into the model.

Sampling frames across a video, the median background (gray and RGB), resizing and
letterboxing, the window that follows the animal, shadow and static masks, the frame
cache at training size, the frame gap, and the pipeline that prepares a video for
training or prediction (:mod:`bkind_model.frames.pipeline`) and samples frame pairs.
"""
