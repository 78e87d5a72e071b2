"""Every benchmark script still runs: each with ``--smoke`` (tiny sizes) in its own process, then
``run_all.py --smoke`` for the table. No timing is asserted; a smoke run's numbers mean nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p.name for p in BENCHMARKS.glob("bench_*.py"))


def run(*args: str) -> str:
    env = {**os.environ, "PYTHONWARNINGS": "error::ResourceWarning"}
    proc = subprocess.run([sys.executable, *args], cwd=BENCHMARKS, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_every_script_is_found() -> None:
    assert {"bench_overhead.py", "bench_bulk.py", "bench_decode.py", "bench_pagination.py",
            "bench_ratelimit.py", "bench_bulk_memory.py", "bench_redis_limiter.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_runs(script: str) -> None:
    assert run(script, "--smoke").strip()


def test_run_all_prints_one_table() -> None:
    out = run("run_all.py", "--smoke")
    table = [line for line in out.splitlines() if line.startswith("| ")]
    assert table[0] == "| benchmark [conditions] | result |"
    assert len(table) >= 20, out[-3000:]
    assert "machine: " in out and "CPUs" in out and "sniffio" in out
