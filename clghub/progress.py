"""Progress for long work: Rich bars on a terminal, silence in a pipe or CI."""

from __future__ import annotations

import sys
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rich.progress import TaskID

__all__ = ["NullProgress", "Progress", "RichProgress", "progress_for_terminal"]


class Progress(Protocol):
    def start(self, key: str, label: str, total: int | None = None) -> None: ...

    def advance(self, key: str, amount: int = 1) -> None: ...

    def finish(self, key: str, note: str = "") -> None: ...


class NullProgress:
    def start(self, key: str, label: str, total: int | None = None) -> None:
        pass

    def advance(self, key: str, amount: int = 1) -> None:
        pass

    def finish(self, key: str, note: str = "") -> None:
        pass

    def __enter__(self) -> NullProgress:
        return self

    def __exit__(self, *_: object) -> None:
        pass


class RichProgress:
    """Thread-safe: syncs of several sources advance their bars concurrently."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description:<32}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def start(self, key: str, label: str, total: int | None = None) -> None:
        with self._lock:
            self._tasks[key] = self._progress.add_task(label, total=total, note="")

    def advance(self, key: str, amount: int = 1) -> None:
        with self._lock:
            task = self._tasks.get(key)
            if task is not None:
                self._progress.advance(task, amount)

    def finish(self, key: str, note: str = "") -> None:
        with self._lock:
            task = self._tasks.get(key)
            if task is None:
                return
            done = next((t.completed for t in self._progress.tasks if t.id == task), 0.0) or 1.0
            self._progress.update(task, total=done, completed=done, note=note)


def progress_for_terminal(enabled: bool = True) -> RichProgress | NullProgress:
    """Bars when stderr is a terminal; quiet otherwise."""
    if enabled and sys.stderr.isatty():
        return RichProgress()
    return NullProgress()
