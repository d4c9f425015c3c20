"""Long engine work in a napari thread worker: progress bar, cancel, errors as notifications."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Generator
from typing import Any

from napari.qt.threading import create_worker
from napari.utils import progress
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QObject, Signal

from bkind_model.errors import BKindError


class TaskCancelled(Exception):
    """Raised inside a worker to stop it after the user pressed Cancel."""


#: What a worker returns when its function raised (the error went to ``Task._errored``).
_FAILED = object()


def show_exception(action: str, exc: BaseException) -> None:
    """Notify the user of an error: the engine's own message, or the error's type and text."""
    if isinstance(exc, BKindError | OSError | ValueError):
        show_error(f"{action} failed: {exc}")
    else:
        show_error(f"{action} failed with an unexpected {type(exc).__name__}: {exc}")


class Task(QObject):
    """Runs ``func(task, *args)`` in a napari thread worker.

    ``func`` may be a generator (each yielded value goes to ``on_yield`` in the GUI
    thread) or a plain function (its return value goes to ``on_return``). From the worker
    it reports progress with :meth:`report`, which also raises :class:`TaskCancelled`
    once :meth:`cancel` was called, so engine callbacks stop cleanly.

    Parameters
    ----------
    func : callable
        ``func(task, *args)``.
    *args
        Its arguments.
    desc : str
        What it does, for the progress bar and notifications ("Training", ...).
    on_yield, on_return : callable, optional
        Called in the GUI thread with each yielded value / the return value.
    on_cancel : callable, optional
        Called in the GUI thread when the user cancels (e.g. ``trainer.cancel``).
    on_finish : callable, optional
        Called in the GUI thread when the worker has stopped, whatever the reason.
    """

    _progressed = Signal(int, int, str)
    #: The exception that stopped the work (``TaskCancelled`` after :meth:`cancel`), in the
    #: GUI thread; connect to it instead of the worker's ``errored``, which never fires.
    failed = Signal(object)

    def __init__(
        self,
        func: Callable[..., Any],
        *args: Any,
        desc: str,
        on_yield: Callable[[Any], None] | None = None,
        on_return: Callable[[Any], None] | None = None,
        on_cancel: Callable[[], None] | None = None,
        on_finish: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.desc = desc
        self.cancelled = threading.Event()
        self._on_cancel = on_cancel
        self._bar: progress | None = None
        self._running = False
        self._progressed.connect(self.show_progress)
        self.failed.connect(self._errored)
        self._on_return = on_return
        # Errors never reach the worker's `errored` signal: napari 0.9.2 connects a handler
        # to it that itself fails (a TypeError in the Qt event loop) in a shown viewer.
        self.worker = create_worker(self._guarded(func), self, *args, _start_thread=False)
        if on_yield is not None:
            self.worker.yielded.connect(on_yield)
        self.worker.returned.connect(self._returned)
        self.worker.finished.connect(self._finished)
        if on_finish is not None:
            self.worker.finished.connect(on_finish)

    def _guarded(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """``func`` (a plain or generator function) with its exception sent to :attr:`failed`.

        It then returns :data:`_FAILED`, which is not handed to ``on_return``.
        """
        if inspect.isgeneratorfunction(func):

            def stepping(*args: Any) -> Generator[Any, Any, Any]:
                try:
                    return (yield from func(*args))
                except Exception as exc:
                    self.failed.emit(exc)
                    return _FAILED

            return stepping

        def running(*args: Any) -> Any:
            try:
                return func(*args)
            except Exception as exc:
                self.failed.emit(exc)
                return _FAILED

        return running

    def _returned(self, value: Any) -> None:
        if value is not _FAILED and self._on_return is not None:
            self._on_return(value)

    def start(self) -> Task:
        """Start the worker; returns at once."""
        self._running = True
        self.worker.start()
        return self

    @property
    def running(self) -> bool:
        """Whether the work was started and has not finished yet."""
        return self._running

    def cancel(self) -> None:
        """Ask the work to stop at its next progress report (or step)."""
        self.cancelled.set()
        if self._on_cancel is not None:
            self._on_cancel()

    def report(self, done: int, total: int, message: str = "") -> None:
        """Show progress ``done / total`` (callable from any thread).

        Raises
        ------
        TaskCancelled
            Once :meth:`cancel` was called, so the caller stops.
        """
        if self.cancelled.is_set():
            raise TaskCancelled
        self._progressed.emit(int(done), int(total), message)

    def show_progress(self, done: int, total: int, message: str = "") -> None:
        """Show progress ``done / total`` in the activity dock (GUI thread only)."""
        if not self._running:
            return  # a late report after the worker finished
        bar = self._bar
        if bar is None:
            # Creating a bar lets Qt process events (even `finished`): keep it local.
            bar = self._bar = progress(total=total, desc=self.desc)
        if bar.total != total:
            bar.total = total
        if message:
            bar.set_description(f"{self.desc}: {message}")
        bar.update(done - bar.n)
        if not self._running:
            bar.close()

    def _errored(self, exc: BaseException) -> None:
        if isinstance(exc, TaskCancelled):
            show_info(f"{self.desc}: cancelled.")
        else:
            show_exception(self.desc, exc)

    def _finished(self) -> None:
        self._running = False
        if self._bar is not None:
            self._bar.close()
            self._bar = None
