"""A results file chosen in a dock widget, read once when first needed."""

from __future__ import annotations

from magicgui.widgets import FileEdit

from bkind_model.errors import BKindError
from bkind_model.io.results import KeypointResult


class ChosenResults:
    """The *Keypoints* file picker of a widget and the keypoints it holds.

    Parameters
    ----------
    tooltip : str
        What the file should be.
    missing : type of BKindError
        The error raised (with a message saying what to choose) when none is chosen.
    """

    def __init__(self, tooltip: str, missing: type[BKindError]) -> None:
        self.edit = FileEdit(
            label="Keypoints", mode="r", filter="*.h5", nullable=True, value=None, tooltip=tooltip
        )
        self.result: KeypointResult | None = None
        self._missing = missing
        self.edit.changed.connect(self.forget)

    def forget(self) -> None:
        """Drop the loaded keypoints (another file was chosen)."""
        self.result = None

    def load(self) -> KeypointResult:
        """The chosen file's keypoints, read once."""
        if self.result is None:
            if not self.edit.value:
                raise self._missing(
                    "no keypoints: choose the results .h5 of the video (Discover keypoints)."
                )
            self.result = KeypointResult.load(self.edit.value)
        return self.result
