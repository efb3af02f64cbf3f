"""`python -m benchmarks.instructions --calls`: the Python calls a request runs, as the benchmarks' README cites them."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_calls_of_a_request_are_counted_and_errorkits_own_listed() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.instructions", "--calls", "plain"],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    summary = re.search(r"^plain +([\d.]+) Python calls a request, errorkit's \(or the lean middleware's\) +([\d.]+)$",
                        out, re.MULTILINE)  # fmt: skip
    assert summary is not None, out
    listed = dict((name, float(n)) for n, name in re.findall(r"^ +([\d.]+)  errorkit/\S+ (\S+)$", out, re.MULTILINE))

    # the no-stage layer: the request id, the body recorder's test, the gateway's coroutine and its held start
    assert listed == {
        "GatewayMiddleware.__call__": 1.0,
        "_HeldStart.__init__": 1.0,
        "_HeldStart.__call__": 2.0,  # the response's start and its body
        "assign_request_id": 1.0,
        "incoming_request_id": 1.0,
        "unique_id": 1.0,
        "keep_body": 1.0,
    }
    assert float(summary[2]) == sum(listed.values()) == 8.0
    assert float(summary[1]) > 40  # Starlette's router, the endpoint, its response and the driver's task besides
