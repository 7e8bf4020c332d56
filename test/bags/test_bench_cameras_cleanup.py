"""The cameras benchmark (benchmarks/cameras) stops every node process it started however
it ends: interrupted (Ctrl-C), terminated (SIGTERM) or failed (a startup timeout).

Each run carries a tag in its environment, which its node processes inherit, so a node left
running is found even after the benchmark has exited (its nodes run in sessions of their
own and are no longer its children then).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from ros_processes import REPO, START_WAIT, wait_until

TAG = "SAM2_TEST_BENCH_CLEANUP"


def tagged(tag: str) -> dict[int, str]:
    """Live processes (zombies left out) whose environment carries the tag: their command."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue  # exited meanwhile, or not ours to read
        if f"{TAG}={tag}".encode() in environ and state != "Z":
            found[int(entry.name)] = command
    return found


def nodes(tag: str) -> dict[int, str]:
    return {pid: cmd for pid, cmd in tagged(tag).items() if "tracker_node" in cmd}


def run_bench(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, str]:
    """``python -m benchmarks.cameras`` as the Makefile runs it (outside the repository,
    tiny images), two cameras each in a process of its own."""
    tag = uuid.uuid4().hex
    env = dict(os.environ, PYTHONPATH=f"{os.environ.get('PYTHONPATH', '')}:{REPO}",
               **{TAG: tag})
    command = [sys.executable, "-m", "benchmarks.cameras", "--cameras", "2", "--layouts",
               "separate", "--image-size", "64", "--torch-threads", "1", "--duration", "1",
               "--settle", "0", *args]
    bench = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
    return bench, tag


def finish(bench: subprocess.Popen, tag: str, timeout: float = 120) -> tuple[str, dict]:
    """The benchmark's output once it has exited and its run's processes still running
    then; those are killed (the benchmark too if it has not exited within ``timeout``: a
    failure), so a failing test leaves nothing behind either."""
    try:
        output, _ = bench.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        output = None
    left = tagged(tag)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    if output is None:
        output, _ = bench.communicate(timeout=10)
        pytest.fail(f"the benchmark did not exit within {timeout:.0f} s; its output:\n{output}")
    return output, left


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signalled_benchmark_stops_its_node_processes(tmp_path: Path, signum: int) -> None:
    bench, tag = run_bench(tmp_path)
    signalled = False
    try:
        wait_until(lambda: len(nodes(tag)) == 2, START_WAIT,
                   "the benchmark's two node processes")
        bench.send_signal(signum)
        signalled = True
    finally:
        output, left = finish(bench, tag, 120 if signalled else 0)
    assert not left, (
        f"after {signal.Signals(signum).name}, still running: {left}; output:\n{output}")
    assert bench.returncode != 0


def test_a_failed_configuration_stops_its_node_processes(tmp_path: Path) -> None:
    """No node is up within the startup timeout (Python alone takes longer), an exception;
    the benchmark reports it, stops the nodes and exits non-zero."""
    bench, tag = run_bench(tmp_path, "--startup-timeout", "0.2")
    output, left = finish(bench, tag)
    assert not left, f"still running: {left}; output:\n{output}"
    assert "failed: RuntimeError: timed out" in output, output
    assert bench.returncode == 1


HELD_INTERRUPT = """
import os, signal
from benchmarks.node_latency import signals_held
reached_end = False
try:
    with signals_held():
        os.kill(os.getpid(), signal.SIGINT)
        reached_end = True
except KeyboardInterrupt:
    restored = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    print(f"interrupted; body finished: {reached_end}; handler restored: {restored}")
"""


def test_an_interrupt_while_a_node_is_spawned_waits_until_it_is_registered() -> None:
    """Ctrl-C inside ``Popen`` (the race a signalled run can hit) is held back until the
    node is in the cleanup's registry, then delivered."""
    env = dict(os.environ, PYTHONPATH=f"{os.environ.get('PYTHONPATH', '')}:{REPO}")
    done = subprocess.run([sys.executable, "-c", HELD_INTERRUPT], env=env, text=True,
                          capture_output=True, timeout=120)
    assert "interrupted; body finished: True; handler restored: True" in done.stdout, (
        done.stdout + done.stderr)
