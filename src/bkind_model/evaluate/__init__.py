"""Evaluation: how well keypoints predict labelled joints, against blob and mean-pose baselines."""
