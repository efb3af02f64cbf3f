"""Rate-limit benchmark: bare Starlette vs errorkit (Redis, memory) vs the naive one-EVALSHA design.

    python -m benchmarks.ratelimit [--rounds 5] [--seconds 10]

Writes its table into benchmarks/README.md.
"""

import argparse
import platform
import time
from pathlib import Path

from benchmarks.harness import rounds, table, write_section

VARIANTS = ["bare", "errorkit_redis", "errorkit_memory", "naive_redis"]
LABELS = {
    "bare": "bare Starlette",
    "errorkit_redis": "errorkit rate limiting, Redis",
    "errorkit_memory": "errorkit rate limiting, in-memory",
    "naive_redis": "naive: one redis-py EVALSHA per request",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    results = rounds(VARIANTS, "/", args.rounds, args.seconds, args.warmup)
    command = f"python -m benchmarks.ratelimit --rounds {args.rounds} --seconds {args.seconds}"
    body = (
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {platform.python_version()}, "
        f"{args.rounds} interleaved rounds of {args.seconds} s (medians), `GET /` returning a small JSON body.\n\n"
        f"```\n{command}\n```\n\n{table(results, 'bare', LABELS)}"
    )
    write_section(Path(__file__).parent / "README.md", "ratelimit", body)
    print(table(results, "bare", LABELS))


if __name__ == "__main__":
    main()
