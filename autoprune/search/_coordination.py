"""Once-per-study steps when several workers start together: an atomic claim in the storage.

Creating a study with a given name is atomic in every Optuna storage (a
second creator gets ``DuplicatedStudyError``), so a marker study named
``<study>:autoprune-<step>`` decides which process does a step (prepare the
shared results, enqueue the seeds, top up the trial slots); the others wait
for its result. A claimant that died is detected (same host: its pid is gone;
any host: it held the claim longer than ``timeout``) and its step is taken over.

Example:
    >>> # if claim(storage, "mystudy", "setup"): prepare()
    >>> # else: wait_for(lambda: prepared(), storage, "mystudy", "setup")
"""

from __future__ import annotations

import datetime
import os
import socket
import time

import optuna

from autoprune.errors import RunError


def _marker_name(study_name: str, step: str) -> str:
    return f"{study_name}:autoprune-{step}"


def claim(storage, study_name: str, step: str) -> bool:
    """True if this process is the one to do ``step`` (it created the marker)."""
    try:
        marker = optuna.create_study(study_name=_marker_name(study_name, step), storage=storage)
    except optuna.exceptions.DuplicatedStudyError:
        return False
    marker.set_user_attr("owner", f"{socket.gethostname()}:{os.getpid()}")
    marker.set_user_attr("since", datetime.datetime.now().isoformat())
    return True


def release(storage, study_name: str, step: str) -> None:
    """Remove the marker, so the step may be claimed again (used when a claimant died)."""
    try:
        optuna.delete_study(study_name=_marker_name(study_name, step), storage=storage)
    except KeyError:
        pass


def _owner_dead(storage, study_name: str, step: str, timeout: float) -> bool:
    try:
        marker = optuna.load_study(study_name=_marker_name(study_name, step), storage=storage)
    except KeyError:
        return True
    owner = marker.user_attrs.get("owner", "")
    host, _, pid = owner.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
    since = marker.user_attrs.get("since")
    if since:
        age = (datetime.datetime.now() - datetime.datetime.fromisoformat(since)).total_seconds()
        return age > timeout
    return False


def wait_for(
    done, storage, study_name: str, step: str, *, timeout: float = 3600.0, poll: float = 1.0
) -> bool:
    """Wait until ``done()`` is true; return False when the claimant died (the caller takes over)."""
    start = time.monotonic()
    while not done():
        if _owner_dead(storage, study_name, step, timeout):
            release(storage, study_name, step)
            return False
        if time.monotonic() - start > timeout:
            raise RunError(
                f"Waited {timeout:.0f} s for another worker to finish the study's {step}; "
                "it did not. Check that worker, or remove the study and start again."
            )
        time.sleep(poll)
    return True
