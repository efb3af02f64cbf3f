"""Idempotency benchmark: first-time POSTs (a fresh key each) and replays of one key, vs bare Starlette POST.

    python -m benchmarks.idempotency [--rounds 5] [--seconds 10]

Writes its table into benchmarks/README.md.
"""

from pathlib import Path

from benchmarks.harness import Case, main

HERE = Path(__file__).parent
CASES = {
    "bare Starlette POST": Case("bare", "/objects", HERE / "post.lua"),
    "errorkit first-time POST, Redis": Case("idem_redis", "/objects", HERE / "idem_first.lua"),
    "errorkit replay, Redis": Case("idem_redis", "/objects", HERE / "idem_replay.lua"),
    "errorkit first-time POST, Redis Cluster (3 primaries)": Case(
        "idem_redis", "/objects", HERE / "idem_first.lua", cluster=True
    ),
    "errorkit first-time POST, in-memory": Case("idem_memory", "/objects", HERE / "idem_first.lua"),
    "errorkit replay, in-memory": Case("idem_memory", "/objects", HERE / "idem_replay.lua"),
}

if __name__ == "__main__":
    main(
        CASES,
        "idempotency",
        "benchmarks.idempotency",
        "`POST /objects` with a small JSON body, answered 201 + `Location`",
    )
