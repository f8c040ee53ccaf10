"""srg.gpus: per-job GPU pinning with flock'ed lock files (CPU only: SRG_GPU_COUNT fakes 4 GPUs)."""

import os
import subprocess
import sys
import time

import pytest

from srg import gpus

# the child prints what it was given, then sleeps so that claims overlap
SHOW = "import os, sys, time; print(os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>'), flush=True); time.sleep(float(sys.argv[1]))"


@pytest.fixture
def env(tmp_path):
    e = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "SRG_GPU_TIMEOUT")}
    e.update(SRG_GPU_COUNT="4", SRG_GPU_LOCK_DIR=str(tmp_path / "locks"))
    return e


def pinned(env, n, *cmd, timeout=5.0):
    return subprocess.Popen(
        [sys.executable, "-m", "srg.gpus", "--n", str(n), "--timeout", str(timeout), "--poll", "0.05", "--", *cmd],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_line(proc):
    line = proc.stdout.readline().strip()
    assert line, proc.stderr.read()
    return line


def all_free(lock_dir):
    return all(gpus._is_free(gpus.lock_path(lock_dir, str(i))) for i in range(4))


def test_concurrent_claims_are_disjoint_and_freed(env, tmp_path):
    a = pinned(env, 2, sys.executable, "-c", SHOW, "1.5")
    b = pinned(env, 2, sys.executable, "-c", SHOW, "1.5")
    got_a, got_b = wait_for_line(a).split(","), wait_for_line(b).split(",")
    assert len(got_a) == len(got_b) == 2
    assert not set(got_a) & set(got_b) and set(got_a) | set(got_b) <= {"0", "1", "2", "3"}
    assert a.wait() == 0 and b.wait() == 0
    assert all_free(tmp_path / "locks")


def test_claim_beyond_free_waits_then_times_out(env, tmp_path):
    holder = pinned(env, 2, sys.executable, "-c", SHOW, "3")
    wait_for_line(holder)
    t0 = time.monotonic()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "srg.gpus",
            "--n",
            "3",
            "--timeout",
            "0.6",
            "--poll",
            "0.05",
            "--",
            sys.executable,
            "-c",
            "print('ran')",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert time.monotonic() - t0 >= 0.6
    assert r.returncode == gpus.EXIT_TIMEOUT and "ran" not in r.stdout
    assert "timed out after 0.6 s waiting for 3 free GPU(s) of 4 visible" in r.stderr
    assert f"pid {holder.pid}" in r.stderr and "--resources gpu=" in r.stderr
    holder.terminate()  # SIGTERM reaches the child through the wrapper; the locks go with them
    assert holder.wait() == 128 + 15
    assert all_free(tmp_path / "locks")


def test_claim_waits_until_devices_free_up(env):
    holder = pinned(env, 3, sys.executable, "-c", SHOW, "0.5")
    wait_for_line(holder)
    waiter = pinned(env, 2, sys.executable, "-c", SHOW, "0")
    assert len(wait_for_line(waiter).split(",")) == 2
    assert holder.wait() == 0 and waiter.wait() == 0


def test_more_than_visible_fails_at_once(env):
    r = subprocess.run(
        [sys.executable, "-m", "srg.gpus", "--n", "5", "--", "true"],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert r.returncode == gpus.EXIT_TIMEOUT and "needs 5 GPU(s) but only 4 are visible" in r.stderr


def test_return_code_propagates_and_locks_are_freed(env, tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "srg.gpus",
            "--n",
            "4",
            "--",
            sys.executable,
            "-c",
            "import os, sys; print(os.environ['CUDA_VISIBLE_DEVICES']); sys.exit(7)",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert r.returncode == 7
    assert sorted(r.stdout.strip().split(",")) == ["0", "1", "2", "3"]
    assert all_free(tmp_path / "locks")


def test_zero_passes_through(env):
    env = {**env, "CUDA_VISIBLE_DEVICES": "5,6"}
    r = subprocess.run(
        [sys.executable, "-m", "srg.gpus", "--n", "0", "--", sys.executable, "-c", SHOW, "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert r.returncode == 0 and r.stdout.strip() == "5,6" and r.stderr == ""


def test_parent_visible_devices_are_the_pool(env):
    env = {**env, "CUDA_VISIBLE_DEVICES": "3,GPU-ab12"}
    assert gpus.visible_gpus(env) == ["3", "GPU-ab12"]
    r = subprocess.run(
        [sys.executable, "-m", "srg.gpus", "--n", "2", "--", sys.executable, "-c", SHOW, "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert r.returncode == 0 and r.stdout.strip() == "3,GPU-ab12"


def test_default_lock_dir_is_per_slurm_job():
    assert gpus.default_lock_dir({}) == gpus.Path("/tmp/srg-gpu-locks")
    assert gpus.default_lock_dir({"SLURM_JOB_ID": "42"}) == gpus.Path("/tmp/srg-gpu-locks/slurm-42")
    assert gpus.default_lock_dir({"SLURM_JOB_ID": "42", "SRG_GPU_LOCK_DIR": "/x"}) == gpus.Path("/x")


def test_lock_outlives_a_killed_wrapper_until_the_child_dies(env, tmp_path):
    holder = pinned(env, 4, sys.executable, "-c", SHOW, "30")
    wait_for_line(holder)
    with open(f"/proc/{holder.pid}/task/{holder.pid}/children") as fh:
        (child,) = (int(p) for p in fh.read().split())
    holder.kill()  # SIGKILL: no cleanup in the wrapper; the child still runs on the GPUs
    holder.wait()
    assert not all_free(tmp_path / "locks")
    os.kill(child, 9)
    deadline = time.monotonic() + 5
    while not all_free(tmp_path / "locks") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all_free(tmp_path / "locks")
