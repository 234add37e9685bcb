"""The in-process engine user reports every command it applies to locust's statistics.

Locust monkey-patches the process that imports it (gevent), so the user runs in a process
of its own, which prints locust's statistics as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60
RUN_ONE_USER = """
import json
import gevent
from locust.env import Environment
from loadtests.engine_user import EngineUser

env = Environment(user_classes=[EngineUser])
runner = env.create_local_runner()
runner.start(1, spawn_rate=1)
gevent.sleep(1.0)
runner.quit()
print(json.dumps({
    f"{method} {name}": [entry.num_requests, entry.num_failures, entry.total_content_length]
    for (name, method), entry in env.stats.entries.items()
}))
"""


def test_engine_user_reports_each_command_to_locust_statistics() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATAEX_ENGINE_OPERATIONS": "6000"}
    result = subprocess.run(
        [sys.executable, "-c", RUN_ONE_USER],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(stats) == {"engine SubmitOrder", "engine CancelOrder"}, stats
    for requests, failures, events in stats.values():
        assert requests > 0 and failures == 0
        assert events >= requests  # every command answers with at least one event
