"""Pin one job to its own GPUs: ``python -m srg.gpus --n N -- CMD ARGS...``.

Snakemake's ``--resources gpu=N`` only counts GPUs; it never sets ``CUDA_VISIBLE_DEVICES``, so on
one multi-GPU machine two concurrent GPU jobs would both land on device 0. This wrapper claims N
free devices out of the visible ones, runs the command with ``CUDA_VISIBLE_DEVICES`` set to them
and frees them when the command ends.

Visible devices, first match wins: the entries of the caller's ``CUDA_VISIBLE_DEVICES`` (indices or
UUIDs, e.g. what SLURM granted), ``SRG_GPU_COUNT`` devices ``0..COUNT-1`` (an explicit override,
used by the tests), the devices ``nvidia-smi -L`` lists.

A device is claimed by an exclusive ``fcntl.flock`` on ``<lock dir>/gpu<device>.lock`` (lock dir
``SRG_GPU_LOCK_DIR``, default ``/tmp/srg-gpu-locks``). Every job on the machine that uses the same
lock dir takes part, whichever Snakemake run started it. Inside a SLURM job the default lock dir
gets a ``slurm-<job id>`` subfolder: SLURM already gave the job its own devices, and with cgroup
device isolation two jobs on one node may both see theirs as device 0. Claims are all-or-nothing, so two waiting
jobs never hold part of what the other needs. The lock belongs to the open file, which the command
inherits: it lasts while the wrapper or the command is alive, is dropped by the wrapper once the
command exits, and is dropped by the kernel when every process holding it is gone (a crashed or
killed job never leaves a stale lock). The file holds the claiming pid, for error messages.

When fewer than N devices are free the wrapper polls until they are, for at most ``--timeout``
seconds (``SRG_GPU_TIMEOUT``, default 3600), then exits with status 75 and says which devices are
busy and by whom. Otherwise its exit status is the command's (128 + signal when a signal killed
it). ``--n 0`` runs the command as it is, environment untouched.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

DEFAULT_LOCK_DIR = "/tmp/srg-gpu-locks"
DEFAULT_TIMEOUT_S = 3600.0
EXIT_TIMEOUT = 75  # EX_TEMPFAIL: no devices free in time (or never enough visible)


class GpuClaimError(RuntimeError):
    """Not enough GPUs could be claimed (too few visible, or none free before the timeout)."""


def visible_gpus(env: dict[str, str] | None = None) -> list[str]:
    """Device ids this process may use, in order (see the module docstring for the sources)."""
    env = os.environ if env is None else env
    if "CUDA_VISIBLE_DEVICES" in env:
        return [d.strip() for d in env["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()]
    if env.get("SRG_GPU_COUNT", "").strip():
        return [str(i) for i in range(int(env["SRG_GPU_COUNT"]))]
    return [str(i) for i in range(_nvidia_smi_count())]


def _nvidia_smi_count() -> int:
    """Number of GPUs ``nvidia-smi -L`` lists; 0 without nvidia-smi or when it fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return 0
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def default_lock_dir(env: dict[str, str] | None = None) -> Path:
    """SRG_GPU_LOCK_DIR, else /tmp/srg-gpu-locks (per SLURM job inside one)."""
    env = os.environ if env is None else env
    if env.get("SRG_GPU_LOCK_DIR"):
        return Path(env["SRG_GPU_LOCK_DIR"])
    base = Path(DEFAULT_LOCK_DIR)
    return base / f"slurm-{env['SLURM_JOB_ID']}" if env.get("SLURM_JOB_ID") else base


def lock_path(lock_dir: Path, device: str) -> Path:
    """Lock file of one device id (UUIDs and odd characters made file-name safe)."""
    return lock_dir / f"gpu{re.sub(r'[^A-Za-z0-9_.-]', '_', device)}.lock"


def _try_lock(path: Path) -> int | None:
    """An fd holding the exclusive lock on ``path``, or None when another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _release(fds: dict[str, int]) -> None:
    """Unlock (for every process sharing the open file) and close the given lock fds."""
    for fd in fds.values():
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        with contextlib.suppress(OSError):
            os.close(fd)
    fds.clear()


def _holder(path: Path) -> str:
    """The pid written into a lock file by its holder, or '?'."""
    try:
        return path.read_text().strip() or "?"
    except OSError:
        return "?"


def try_claim(n: int, devices: Sequence[str], lock_dir: Path) -> dict[str, int] | None:
    """Lock n of ``devices`` at once ({device: fd}), or lock nothing and return None."""
    held: dict[str, int] = {}
    for device in devices:
        fd = _try_lock(lock_path(lock_dir, device))
        if fd is not None:
            held[device] = fd
            if len(held) == n:
                return held
    _release(held)
    return None


@contextlib.contextmanager
def claim(
    n: int,
    devices: Sequence[str] | None = None,
    lock_dir: Path | str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    poll: float = 0.5,
) -> Iterator[dict[str, int]]:
    """Hold n free devices for the ``with`` body: yields {device: lock fd}, released on exit.

    Raises GpuClaimError when fewer than n devices are visible, or none free up within timeout.
    """
    devices = visible_gpus() if devices is None else list(devices)
    lock_dir = Path(lock_dir) if lock_dir else default_lock_dir()
    if n > len(devices):
        raise GpuClaimError(
            f"srg.gpus: the job needs {n} GPU(s) but only {len(devices)} are visible "
            f"({','.join(devices) or 'none'}); lower the job's gpu resource or run it "
            "where more GPUs are visible"
        )
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    while (held := try_claim(n, devices, lock_dir)) is None:
        if time.monotonic() >= deadline:
            busy = [
                f"{d} (pid {_holder(lock_path(lock_dir, d))})" for d in devices if not _is_free(lock_path(lock_dir, d))
            ]
            raise GpuClaimError(
                f"srg.gpus: timed out after {timeout:g} s waiting for {n} free GPU(s) of {len(devices)} "
                f"visible ({','.join(devices)}); busy: {', '.join(busy) or 'none (freed just now)'}; "
                f"lock dir {lock_dir}. Other jobs hold them: cap concurrent GPU jobs with Snakemake's "
                "--resources gpu=<GPUs on this machine>, or wait longer (--timeout / SRG_GPU_TIMEOUT)"
            )
        time.sleep(max(0.0, min(poll, deadline - time.monotonic())))
    try:
        yield held
    finally:
        _release(held)


def _is_free(path: Path) -> bool:
    """Whether nobody holds the lock on ``path`` right now (probes by locking and unlocking)."""
    fd = _try_lock(path)
    if fd is None:
        return False
    _release({"probe": fd})
    return True


def run_pinned(n: int, cmd: Sequence[str], timeout: float = DEFAULT_TIMEOUT_S, poll: float = 0.5) -> int:
    """Run ``cmd`` on n claimed GPUs and return its exit status (128 + signal if a signal killed it)."""
    if n == 0:
        return _run(cmd, dict(os.environ), ())
    with claim(n, timeout=timeout, poll=poll) as held:
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(held)}
        print(f"srg.gpus: CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']} for {cmd[0]}", file=sys.stderr, flush=True)
        return _run(cmd, env, tuple(held.values()))


def _run(cmd: Sequence[str], env: dict[str, str], pass_fds: tuple[int, ...]) -> int:
    """Run cmd (stdio inherited) until it exits; SIGTERM is passed on to it.

    SIGINT and SIGHUP are ignored meanwhile: they come from the terminal to the whole process
    group, the command included, and the wrapper must outlive the command to free its GPUs.
    """
    try:
        child = subprocess.Popen(list(cmd), env=env, pass_fds=pass_fds)
    except OSError as exc:
        print(f"srg.gpus: cannot run {cmd[0]!r}: {exc}", file=sys.stderr, flush=True)
        return 127

    def forward(signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    previous = {
        signal.SIGTERM: signal.signal(signal.SIGTERM, forward),
        signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
        signal.SIGHUP: signal.signal(signal.SIGHUP, signal.SIG_IGN),
    }
    try:
        rc = child.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 128 - rc if rc < 0 else rc


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m srg.gpus --n N [--timeout S] [--poll S] -- CMD ARGS...``."""
    parser = argparse.ArgumentParser(prog="python -m srg.gpus", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, required=True, help="GPUs to claim (0: run CMD unchanged)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=float(os.environ.get("SRG_GPU_TIMEOUT") or DEFAULT_TIMEOUT_S),
        help="seconds to wait for free GPUs (default: SRG_GPU_TIMEOUT or %(default)s)",
    )
    parser.add_argument("--poll", type=float, default=0.5, help="seconds between claim attempts")
    parser.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if args.n < 0:
        parser.error("--n must be >= 0")
    if not cmd:
        parser.error("no command given (python -m srg.gpus --n N -- CMD ARGS...)")
    try:
        return run_pinned(args.n, cmd, timeout=args.timeout, poll=args.poll)
    except GpuClaimError as exc:
        print(exc, file=sys.stderr, flush=True)
        return EXIT_TIMEOUT


if __name__ == "__main__":
    sys.exit(main())
