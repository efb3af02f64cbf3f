"""Unloaded latency (wrk -c1) of the whole stack, this tree against an older commit, same rounds.

    python -m benchmarks.latency --compare REV [--rounds 5] [--seconds 5] [--connections 1]

Both trees serve this tree's `benchmarks/apps.py` (copied into REV's), so the same app is
measured on both versions of errorkit; REV must have the API the apps use. Prints a table
(p50 and p99 are the numbers that matter here); nothing is written to the README.
"""

import argparse
import shutil
from pathlib import Path

from benchmarks.harness import ROOT, Case, rounds, source_at, table

HERE = Path(__file__).parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--compare", metavar="REV", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=1, help="wrk -c (64: the same comparison under load)")
    args = parser.parse_args()
    c = args.connections
    with source_at(args.compare) as old:
        shutil.copy(ROOT / "benchmarks" / "apps.py", old / "benchmarks" / "apps.py")
        cases = {
            "bare GET": Case("bare", connections=c),
            "auth + rate limit GET": Case("stack_redis", "/", HERE / "stack_get.lua", connections=c),
            f"auth + rate limit GET @ {args.compare}": Case(
                "stack_redis", "/", HERE / "stack_get.lua", root=old, connections=c
            ),
            "bare POST": Case("bare", "/objects", HERE / "post.lua", connections=c, baseline="bare POST"),
            "auth + rate limit + idempotency, first-time POST": Case(
                "stack_redis", "/objects", HERE / "stack_first.lua", connections=c, baseline="bare POST"
            ),
            f"auth + rate limit + idempotency, first-time POST @ {args.compare}": Case(
                "stack_redis", "/objects", HERE / "stack_first.lua", root=old, connections=c, baseline="bare POST"
            ),
        }
        results = rounds(cases, args.rounds, args.seconds, warmup=2)
    baselines = {name: case.baseline for name, case in cases.items() if case.baseline}
    print(table(results, "bare GET", {}, baselines))


if __name__ == "__main__":
    main()
