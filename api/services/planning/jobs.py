"""Progress and cancellation of long planning work (redraws, imports).

A caller passes ``progress(stage, done, total)`` to see the work advance (the
CLI draws bars, the console streams it to the browser) and a
:class:`CancelToken` it may :meth:`~CancelToken.cancel` from any thread (the
console's cancel button). The work checks the token between its steps and stops
with :class:`Cancelled`; whatever it had committed before stays, nothing is
half-written.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from api.errors import Conflict

#: ``progress(stage, done, total)``: ``done`` of ``total`` items of the named stage are finished.
ProgressFn = Callable[[str, int, int], None]


class Cancelled(Conflict):
    """The caller cancelled the work; nothing of the step under way was stored."""

    error_type = "cancelled"


class CancelToken:
    """A flag the caller sets to stop long work at its next step; safe to share between threads."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = "cancelled by the caller"

    def cancel(self, reason: str | None = None) -> None:
        """Ask the work to stop at its next step."""
        if reason:
            self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._event.is_set()

    def check(self, what: str = "the work") -> None:
        """Raise :class:`Cancelled` if the token was cancelled.

        Parameters
        ----------
        what
            What is being stopped, for the message (``"the redraw of 340503001001"``).
        """
        if self._event.is_set():
            raise Cancelled(f"{what} was cancelled ({self.reason}); nothing of it was stored", loc=[])


def step(
    progress: ProgressFn | None,
    cancel: CancelToken | None,
    stage: str,
    done: int,
    total: int,
    what: str = "the work",
) -> None:
    """Report progress, then stop (:class:`Cancelled`) if the caller cancelled ``what``."""
    if progress is not None:
        progress(stage, done, total)
    if cancel is not None:
        cancel.check(what)
