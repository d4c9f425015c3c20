"""The run lock leaves no file behind, and removing it on release keeps the exclusion."""

from __future__ import annotations

import subprocess
import sys

from bkind_model.io.lock import RunLock

#: A process that takes the lock ``rounds`` times. Inside, it checks that no one else is
#: inside (a marker file), stays a moment, and leaves; a lock that two processes hold at
#: once is reported with exit status 3. It prints how often it got in.
CONTENDER = """
import os, sys, time
from pathlib import Path
from bkind_model.errors import RunLockedError
from bkind_model.io.lock import RunLock

folder, rounds = Path(sys.argv[1]), int(sys.argv[2])
marker = folder / "inside"
got = 0
while got < rounds:
    try:
        lock = RunLock(folder, "contender", name=".out.lock")
    except RunLockedError:
        continue
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL)  # fails if the other one is inside
    except FileExistsError:
        sys.exit(3)
    os.close(fd)
    time.sleep(0.0005)
    marker.unlink()
    lock.release()
    got += 1
print(got)
"""


def test_a_released_lock_leaves_no_file(tmp_path):
    lock = RunLock(tmp_path, "bkind extract", name=".r.bkind.h5.lock")
    path = tmp_path / ".r.bkind.h5.lock"
    assert "bkind extract (pid" in path.read_text()
    again = RunLock(tmp_path, name=".r.bkind.h5.lock")  # shared within the process
    again.release()
    assert path.exists()  # the first user still holds it
    lock.release()
    assert list(tmp_path.iterdir()) == []
    with RunLock(tmp_path):
        assert (tmp_path / ".lock").exists()
    assert list(tmp_path.iterdir()) == []


def test_a_lock_file_left_by_a_killed_process_is_taken_over_and_removed(tmp_path):
    (tmp_path / ".lock").write_text("bkind train (pid 1 on gone, since long ago)\n")
    with RunLock(tmp_path):  # no process holds it: the file is only a leftover
        assert "pid 1 on gone" not in (tmp_path / ".lock").read_text()
    assert not (tmp_path / ".lock").exists()


def test_another_process_is_refused_while_the_lock_is_held(tmp_path):
    take = (
        "import sys; from bkind_model.io.lock import RunLock; "
        "RunLock(sys.argv[1], name='.out.lock')"
    )
    with RunLock(tmp_path, "holder", name=".out.lock"):
        refused = subprocess.run(
            [sys.executable, "-c", take, str(tmp_path)], capture_output=True, text=True
        )
        assert refused.returncode == 1
        assert "RunLockedError" in refused.stderr and "in use by holder" in refused.stderr
    taken = subprocess.run([sys.executable, "-c", take, str(tmp_path)], capture_output=True)
    assert taken.returncode == 0, taken.stderr
    assert list(tmp_path.iterdir()) == []


def test_two_processes_never_hold_it_at_once_although_it_is_removed(tmp_path):
    """Each release unlinks the file another process may have just opened: still exclusive."""
    rounds = 150
    contenders = [
        subprocess.Popen(
            [sys.executable, "-c", CONTENDER, str(tmp_path), str(rounds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for process in contenders:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, f"both held the lock at once: {err}"
        assert int(out) == rounds
    assert list(tmp_path.iterdir()) == []
