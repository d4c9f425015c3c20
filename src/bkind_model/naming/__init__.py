"""Named bodyparts from a few labelled frames: discovered keypoints mapped to names.

``bodyparts`` (names and skeleton, from a DeepLabCut ``config.yaml`` or JSON),
``features`` (what a map sees: keypoints in the animal's body frame, optionally placed on
the blob), ``proposal`` (frames to label: k-means on poses), ``mapping`` (the ridge map
per bodypart, its uncertainty and likelihood, saved as ``.map.npz``), ``export``
(``machinelabels-iter0.h5`` for napari-deeplabcut) and ``run`` (files in, named
``.bkind.h5`` out, as ``bkind name`` and the napari widget do it).
"""
