"""``RunLock``: one writer per run directory."""

import os
from pathlib import Path

from core.errors import KerastackError


class RunLock:
    """``RUN/.lock`` holding the writer's pid: a second writer of the same run directory is refused;
    a lock left by a dead process is taken over (and said so)."""

    def __init__(self, run_dir):
        self.path = Path(run_dir) / ".lock"

    def __enter__(self):
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                pid = self._owner()
                if pid is not None and _alive(pid):
                    raise KerastackError(
                        f"{self.path.parent} is being written by process {pid} (lock file {self.path})"
                    ) from None
                print(f"kerastack: taking over {self.path} left by process {pid}, which is gone")
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            return self
        raise KerastackError(f"cannot lock {self.path.parent}")

    def __exit__(self, *exc):
        if self._owner() == os.getpid():
            self.path.unlink(missing_ok=True)

    def _owner(self):
        return _holder(self.path.parent)


def live_writer(run_dir):
    """The pid of the live process that holds ``run_dir``'s lock, or None (no lock, or its writer
    is gone: killed, say, with SIGKILL)."""
    pid = _holder(run_dir)
    return pid if pid is not None and _alive(pid) else None


def writer_gone(run_dir):
    """Whether ``run_dir``'s lock names a process that is gone: its writer was killed before it
    could say how it stopped."""
    pid = _holder(run_dir)
    return pid is not None and not _alive(pid)


def _holder(run_dir):
    try:
        return int((Path(run_dir) / ".lock").read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
