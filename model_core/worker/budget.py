"""A byte budget for the audio a worker holds: uploads being read, decodes under way, and decoded audio waiting
in the queue. Without it, 1,024 queued 30-minute takes (each a 90 kB FLAC, 115 MB once decoded) would need
more than 100 GB. A request that does not fit is refused with "busy, try later" rather than queued."""

from __future__ import annotations

import threading


class Reservation:
    """Bytes held against a ByteBudget until release(); resize() follows a buffer whose size becomes known."""

    def __init__(self, budget: ByteBudget, nbytes: int) -> None:
        self._budget = budget
        self.nbytes = nbytes

    def resize(self, nbytes: int) -> bool:
        """Hold `nbytes` instead; False (and nothing changed) when growing would overrun the budget."""
        return self._budget._resize(self, max(0, int(nbytes)))

    def release(self) -> None:
        """Give the bytes back; safe to call more than once."""
        self._budget._resize(self, 0, force=True)

    def __repr__(self) -> str:
        return f"Reservation({self.nbytes} bytes)"


class ByteBudget:
    """Thread-safe: the HTTP handlers reserve, the job thread releases when a job's audio is dropped."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit = max(0, int(limit_bytes))
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        with self._lock:
            return self._used

    def reserve(self, nbytes: int) -> Reservation | None:
        """Hold `nbytes`, or None when they do not fit now."""
        reservation = Reservation(self, 0)
        return reservation if self._resize(reservation, max(0, int(nbytes))) else None

    def _resize(self, reservation: Reservation, nbytes: int, force: bool = False) -> bool:
        with self._lock:
            grow = nbytes - reservation.nbytes
            if grow > 0 and not force and self._used + grow > self.limit:
                return False
            self._used += grow
            reservation.nbytes = nbytes
            return True
