"""Named bodyparts from a few labelled frames: discovered keypoints mapped to names."""
