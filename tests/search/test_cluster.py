"""Scale out: workers on a real PostgreSQL server, heartbeats, and the Dask backend."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
from cli_args import candidates, digits_search
from postgres_server import PostgresServer, binaries

from autoprune.search import open_run

pytestmark = pytest.mark.slow
SUPPORT = Path(__file__).resolve().parents[1] / "support"  # interrupt_at.py

ENV = {
    **os.environ,
    "AUTOPRUNE_NO_PROGRESS": "1",
    "PYTHONPATH": os.getcwd(),
    "AUTOPRUNE_HEARTBEAT_INTERVAL": "1",
    "AUTOPRUNE_GRACE_PERIOD": "3",
}


@pytest.fixture(scope="module")
def postgres():
    import shutil
    import tempfile
    from pathlib import Path

    if binaries() is None:
        pytest.skip(
            "PostgreSQL is not installed: 'make install' as root installs Debian's postgresql"
        )
    root = Path(
        tempfile.mkdtemp(prefix="autoprune-postgres-")
    )  # under /tmp: reachable by the 'postgres' user
    server = PostgresServer(root)
    url = server.start()
    yield url
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


def _search(url, study, out, trials, *extra, hold=None, resume=None):
    """A search process; with ``hold``, it stops inside its first trial (see interrupt_at.py):
    for good, or until the file ``resume`` exists."""
    command = ["-m", "autoprune.cli"]
    env = ENV
    if hold is not None:
        moment = "hold-mid-trial" if resume is None else "pause-mid-trial"
        command = [str(SUPPORT / "interrupt_at.py"), moment, "-1", "--"]
        env = {**ENV, "AUTOPRUNE_KILL_MARKER": str(hold), "AUTOPRUNE_RESUME_MARKER": str(resume)}
    return subprocess.Popen(
        [
            sys.executable,
            *command,
            *digits_search(
                trials,
                *("--storage", url, "--study", study, "--out", str(out)),
                *("--no-finalize", "--quiet", *extra),
            ),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _study(url, name):
    return optuna.load_study(study_name=name, storage=url)


def test_two_workers_on_postgresql_share_one_study_and_one_sensitivity_analysis(postgres, tmp_path):
    paused, resume = tmp_path / "paused", tmp_path / "resume"
    a = _search(postgres, "shared", tmp_path / "machine-a", 10, hold=paused, resume=resume)
    while not paused.exists():  # A prepared the study and paused inside its first trial
        assert a.poll() is None, a.communicate()[1]
        time.sleep(0.05)
    b = _search(postgres, "shared", tmp_path / "machine-b", 10)
    while not any(  # B finished a trial of its own while A waited
        t.state.name == "COMPLETE" and t.user_attrs.get("worker", "").endswith(f":{b.pid}")
        for t in _study(postgres, "shared").trials
    ):
        assert b.poll() is None or b.returncode == 0, b.communicate()[1]
        time.sleep(0.05)
    resume.write_text("go")
    for proc in (a, b):
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    study = _study(postgres, "shared")
    complete = [t for t in candidates(study.trials) if t.state.name == "COMPLETE"]
    assert len(complete) == 10 and len(candidates(study.trials)) == 10
    assert len({t.user_attrs["worker"] for t in complete}) == 2  # both machines ran trials
    prepared = [d for d in ("machine-a", "machine-b") if (tmp_path / d / "sensitivity").is_dir()]
    assert len(prepared) == 1  # one sensitivity analysis for the study, not one per worker
    shared = study.user_attrs["autoprune:shared"]
    assert shared["prepared_by"].endswith(str((a if prepared == ["machine-a"] else b).pid))


def test_a_worker_killed_mid_trial_has_its_trial_requeued_and_finished_by_the_other(
    postgres, tmp_path
):
    first = _search(postgres, "killed", tmp_path / "a", 8)
    first.communicate(
        timeout=600
    )  # prepares the study and runs it; now grow it and race two workers
    held = tmp_path / "held"  # worker A writes the number of the trial it holds, then waits
    a = _search(postgres, "killed", tmp_path / "a", 14, hold=held)
    while not held.exists() or not held.read_text():
        assert a.poll() is None, a.communicate()[1]
        time.sleep(0.05)
    victim = int(held.read_text())
    assert "policy" in _study(postgres, "killed").trials[victim].user_attrs  # a retry reuses it
    b = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "autoprune.cli",
            "worker",
            "--storage",
            postgres,
            "--study",
            "killed",
        ],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.kill(a.pid, signal.SIGKILL)
    a.wait()
    out, err = b.communicate(timeout=600)
    assert b.returncode == 0, err
    study = _study(postgres, "killed")
    lost = study.trials[victim]
    assert lost.state.name == "FAIL"
    retry = [t for t in study.trials if t.user_attrs.get("retry_of") == victim]
    assert len(retry) == 1 and retry[0].state.name == "COMPLETE"
    assert retry[0].params == lost.params
    assert retry[0].user_attrs["worker"].endswith(f":{b.pid}")
    assert sum(t.state.name == "COMPLETE" for t in candidates(study.trials)) == 14


def test_dask_backend_gives_the_same_sensitivity_table_as_local_processes(
    digits_task, digits_dense
):
    from distributed import LocalCluster

    from autoprune.sensitivity import SensitivityOptions, analyse_sensitivity

    local = analyse_sensitivity(
        digits_dense.model,
        digits_task,
        grid=(0.3, 0.6, 0.9),
        options=SensitivityOptions(cache=False, progress=False),
    )
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        remote = analyse_sensitivity(
            digits_dense.model,
            digits_task,
            grid=(0.3, 0.6, 0.9),
            options=SensitivityOptions(
                n_jobs=-1,
                backend="dask",
                scheduler=cluster.scheduler_address,
                cache=False,
                progress=False,
            ),
        )
    pd.testing.assert_frame_equal(local.table, remote.table)


def test_a_search_fans_its_workers_out_over_a_dask_cluster(tmp_path):
    from distributed import LocalCluster

    from autoprune.search import SearchOptions, search

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        result = search(
            "digits-mlp",
            "params=0.3",
            space="quick",
            n_trials=6,
            out=tmp_path / "run",
            progress=False,
            options=SearchOptions(n_jobs=2, backend="dask", scheduler=cluster.scheduler_address),
        )
    assert (candidates(result.trials).state == "COMPLETE").sum() == 6
    assert len(candidates(open_run(tmp_path / "run").trials)) == 6
