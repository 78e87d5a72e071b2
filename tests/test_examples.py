"""Every example runs (against the offline server) and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("script,args", [
    ("quickstart.py", []), ("gdpr_bulk_delete.py", []), ("fan_out_projects.py", []),
    ("aiohttp_web_app.py", ["--check"]),
])
def test_example_runs(script: str, args: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTHOG_")}
    proc = subprocess.run([sys.executable, "-W", "error::ResourceWarning", str(EXAMPLES / script), *args],
                          cwd=EXAMPLES, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
