"""A small tmpfs for the tests that need a full disk, and that is always unmounted.

``with small_tmpfs(path, "300k"):`` mounts a tmpfs of that size (``mount -o size=``) at
``path`` (made if missing) and skips the test, in one line, where mounting is not possible
(not root, no ``mount``). On the way out, whatever the test did, it unmounts:

1. ``umount path``; when that fails because something still holds the mount, the processes
   holding a file, a working directory or a mapping under it are found in ``/proc``. Those
   that descend from this test run, and W&B processes (its ``wandb-core`` service outlives the
   ``fnn`` process that started it and may still be writing there), are sent SIGTERM, then
   SIGKILL, each followed by a bounded wait for the process to end (a pidfd, not a sleep).
   Other processes are left alone. This is tried ``ATTEMPTS`` times;
2. then ``umount -l`` detaches the mount from the file tree (what still holds it keeps it
   until it lets go);
3. if ``/proc/self/mountinfo`` still lists the mount, the test fails, naming it and its
   holders: a mount must never outlive its test.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ATTEMPTS = 3  # umount, then end the holders, this many times before umount -l
TERM_SECONDS, KILL_SECONDS = 10.0, 10.0  # bounded waits for a holder to end, per signal


@contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (e.g. ``"300k"``, ``"3m"``) mounted at ``path`` for the ``with``
    block; unmounted afterwards, or the test fails (see the module's docstring)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                                 capture_output=True, text=True)  # fmt: skip
    except FileNotFoundError:
        pytest.skip("cannot mount a small tmpfs here (no mount command)")
    if mounted.returncode != 0:
        reason = (mounted.stderr.strip().splitlines() or ["mount failed"])[-1]
        pytest.skip(f"cannot mount a small tmpfs here (mounting needs root): {reason}")
    try:
        yield path
    finally:
        unmount(path)


def unmount(path: Path) -> None:
    """Unmount the tmpfs at ``path``, ending the holders this test run may end; fail if it is
    still mounted afterwards."""
    point = os.path.realpath(path)
    errors = []
    for attempt in range(1, ATTEMPTS + 1):
        if not is_mounted(point):
            return
        result = subprocess.run(["umount", point], capture_output=True, text=True)
        if result.returncode != 0:
            errors.append(result.stderr.strip() or f"umount: exit code {result.returncode}")
            if attempt < ATTEMPTS:
                for pid in holders(point):
                    if pid != os.getpid() and (descends_from(pid, os.getpid()) or is_wandb(pid)):
                        end(pid)
    if is_mounted(point):
        result = subprocess.run(["umount", "-l", point], capture_output=True, text=True)
        if result.returncode != 0:
            errors.append(f"umount -l: {result.stderr.strip() or result.returncode}")
    if is_mounted(point):
        pytest.fail(
            f"the test tmpfs at {point} is still mounted after {ATTEMPTS} umount attempts and "
            f"umount -l ({'; '.join(errors)}); processes holding it: {holders(point) or 'none'}"
            f" -- unmount it by hand: umount -l {point}"
        )


def is_mounted(point: str) -> bool:
    """Whether ``/proc/self/mountinfo`` lists a mount at ``point`` (a real path)."""
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            target = line.split()[4]
            if _unescape(target) == point:
                return True
    return False


def _unescape(field: str) -> str:
    """A mountinfo path: space, tab, newline and backslash are written as octal escapes."""
    for escape, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(escape, char)
    return field


def _under(link: str, point: str) -> bool:
    link = link.removesuffix(" (deleted)")
    return link == point or link.startswith(point + "/")


def holders(point: str) -> list[int]:
    """The processes with an open file, a working or root directory, or a mapped file under the
    mount ``point`` (as ``fuser -m`` finds them; processes that end meanwhile are skipped)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        proc = Path(entry.path)
        try:
            links = [os.readlink(proc / "cwd"), os.readlink(proc / "root")]
            for fd in os.scandir(proc / "fd"):
                try:
                    links.append(os.readlink(fd.path))
                except OSError:
                    pass
            for line in (proc / "maps").read_text().splitlines():
                fields = line.split(maxsplit=5)  # address perms offset dev inode [path]
                if len(fields) == 6:
                    links.append(fields[5])
        except OSError:  # it ended, or is not ours to look at
            continue
        if any(_under(link.strip(), point) for link in links):
            found.append(int(entry.name))
    return found


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # after "pid (comm) state"


def descends_from(pid: int, ancestor: int) -> bool:
    """Whether ``ancestor`` is ``pid``'s parent, grandparent, ..."""
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        parent = _parent(pid)
        if parent == ancestor:
            return True
        if parent is None:
            return False
        pid = parent
    return False


def is_wandb(pid: int) -> bool:
    """Whether ``pid`` is a W&B process (``wandb-core``, its system monitor, a wandb service)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return os.path.basename(argv[0]).startswith(b"wandb") or argv[1:3] == [b"-m", b"wandb"]


def end(pid: int) -> bool:
    """SIGTERM ``pid``, then SIGKILL, each followed by a bounded wait for it to end; whether it
    ended (a zombie counts: it holds no files). Without pidfds (Linux < 5.3) it is only sent
    SIGKILL, and the next ``umount`` attempt tells whether it let go."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except OSError:  # no pidfd_open on this kernel
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return True
        return False
    try:
        for sig, seconds in ((signal.SIGTERM, TERM_SECONDS), (signal.SIGKILL, KILL_SECONDS)):
            try:
                signal.pidfd_send_signal(handle, sig)
            except ProcessLookupError:
                return True
            poller = select.poll()
            poller.register(handle, select.POLLIN)
            if poller.poll(seconds * 1000):  # readable once the process has ended
                return True
        return False
    finally:
        os.close(handle)
