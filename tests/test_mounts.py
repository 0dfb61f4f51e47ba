"""``mounts.small_tmpfs`` leaves no mount behind: a child of the test run, or a W&B service,
that still holds a file under it is ended; a process it may not end is left alone while the
mount is detached; a mount that cannot be removed fails the test."""

import os
import select
import signal
import subprocess
import sys
from contextlib import ExitStack

import mounts
import pytest
from mounts import is_mounted, small_tmpfs

HOLD = "import sys; held = open(sys.argv[1], 'w'); print('open', flush=True); sys.stdin.read()"

# forks a holder that outlives its parent: re-parented, it descends from no one in this run
ORPHAN = (
    "import os, sys\n"
    "if os.fork():\n"
    "    os._exit(0)\n"
    "held = open(sys.argv[1], 'w')\n"
    "print(os.getpid(), flush=True)\n"
    "sys.stdin.read()\n"
)


@pytest.fixture(autouse=True)
def _root():
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")


def test_a_child_holding_a_file_under_the_mount_is_ended_and_the_mount_removed(tmp_path):
    point = os.path.realpath(tmp_path / "disk")
    with ExitStack() as stack:  # the holder is waited for, and its pipes closed, last
        with small_tmpfs(tmp_path / "disk", size="64k") as disk:
            assert is_mounted(point)
            command = [sys.executable, "-c", HOLD, str(disk / "held")]
            pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "text": True}
            holder = stack.enter_context(subprocess.Popen(command, **pipes))
            assert holder.stdout.readline() == "open\n"  # the file under the mount is open
            assert mounts.holders(point) == [holder.pid]
            busy = subprocess.run(["umount", point], capture_output=True, text=True)
            assert busy.returncode != 0, "a plain umount should fail while the file is open"
        assert not is_mounted(point)
        assert holder.wait(timeout=60) == -signal.SIGTERM  # ended by small_tmpfs, not by us


def test_a_holder_it_may_not_end_is_left_running_and_the_mount_detached(tmp_path):
    point = os.path.realpath(tmp_path / "disk")
    orphan, (stdin, keep_open) = None, os.pipe()  # the orphan waits until keep_open closes
    try:
        with small_tmpfs(tmp_path / "disk", size="64k") as disk:
            command = [sys.executable, "-c", ORPHAN, str(disk / "held")]
            with subprocess.Popen(
                command, stdin=stdin, stdout=subprocess.PIPE, text=True
            ) as parent:
                orphan = int(parent.stdout.readline())  # printed once the file is open
            assert parent.returncode == 0
            assert not mounts.descends_from(orphan, os.getpid())
            assert mounts.holders(point) == [orphan]
        assert not is_mounted(point)  # detached by umount -l
        os.kill(orphan, 0)  # and still running: not small_tmpfs's to end
    finally:
        os.close(stdin)
        os.close(keep_open)  # end of input: the orphan ends
        if orphan is not None:
            assert mounts.end(orphan)


def has_ended(pid: int) -> bool:
    """Whether process ``pid`` has ended (reaped or a zombie), without waiting."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        poller = select.poll()
        poller.register(handle, select.POLLIN)
        return bool(poller.poll(0))
    finally:
        os.close(handle)


def test_a_wandb_service_holding_a_file_is_ended_though_it_left_the_test_run(tmp_path):
    point = os.path.realpath(tmp_path / "disk")
    service, (stdin, keep_open) = None, os.pipe()
    try:
        with small_tmpfs(tmp_path / "disk", size="64k") as disk:
            # like wandb-core: re-parented when the process that started it ends
            command = ["wandb-core", "-c", ORPHAN, str(disk / "held")]
            with subprocess.Popen(command, executable=sys.executable, stdin=stdin,
                                  stdout=subprocess.PIPE, text=True) as parent:  # fmt: skip
                service = int(parent.stdout.readline())
            assert mounts.is_wandb(service) and not mounts.descends_from(service, os.getpid())
            assert mounts.holders(point) == [service]
        assert not is_mounted(point)
        assert has_ended(service)
    finally:
        os.close(stdin)
        os.close(keep_open)
        if service is not None:
            assert mounts.end(service)


def test_a_mount_that_cannot_be_removed_fails_the_test(tmp_path, monkeypatch):
    point = os.path.realpath(tmp_path / "disk")
    real_run = subprocess.run

    def refuse_umount(command, **options):
        if command[0] == "umount":
            return subprocess.CompletedProcess(command, 32, "", "umount: target is busy.")
        return real_run(command, **options)

    try:
        with pytest.raises(pytest.fail.Exception, match=f"tmpfs at {point} is still mounted"):
            with small_tmpfs(tmp_path / "disk", size="64k"):
                monkeypatch.setattr(mounts.subprocess, "run", refuse_umount)
    finally:
        monkeypatch.undo()
        if is_mounted(point):
            subprocess.run(["umount", point], check=True)
    assert not is_mounted(point)
