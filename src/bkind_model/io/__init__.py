"""Files of every kind: videos, frame indexes, results, checkpoints, labels, exports.

Every write goes through :mod:`bkind_model.io.atomic`.
"""
