# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""The inference node's Griffin-Lim worker: a thread that turns the newest decoded mel into a
waveform off the fusion path (Griffin-Lim costs far more than the fusion itself).
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, Optional


class GriffinLimWorker:
    """Newest-mel-only worker thread.

    :meth:`submit` replaces a mel the thread has not taken yet (never blocks the caller); the
    thread calls ``handle(mel)`` (convert and publish) for each mel it takes. An exception in
    ``handle`` is logged through ``log_error`` (throttled by the caller's logger) and the thread
    goes on. :meth:`stop` ends the thread and drops what is queued.
    """

    def __init__(self, handle: Callable, log_error: Callable[[str], None], name: str = "griffin-lim"):
        self._handle = handle
        self._log_error = log_error
        self._name = name
        self._queue: "queue.Queue" = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def submit(self, mel) -> None:
        """Queue ``mel`` for the thread, replacing a mel it has not taken yet."""
        try:
            self._queue.get_nowait()
        except queue.Empty:
            pass
        try:
            self._queue.put_nowait(mel)
        except queue.Full:
            pass

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self.submit(None)
        self._thread.join(timeout=timeout)
        self._thread = None
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return

    def _run(self) -> None:
        while not self._stop.is_set():
            mel = self._queue.get()
            if mel is None or self._stop.is_set():
                return
            try:
                self._handle(mel)
            except Exception as exc:  # noqa: BLE001 - a worker must not die silently
                self._log_error(f"Griffin-Lim failed: {exc}")
