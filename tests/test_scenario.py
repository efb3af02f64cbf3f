"""The load scenario in its short mode: 4 workers, real Redis, invariants checked while it runs."""

from benchmarks.scenario import run


def test_scenario_short_mode_keeps_every_invariant() -> None:
    report = run(seconds=6, concurrency=16)
    assert report.violations == []
    assert set(report.latencies) == {
        "GET campaign", "POST campaign (new key)", "POST campaign (replayed key)",
        "POST export (over limit)", "GET with a bad key", "POST topics (invalid body)",
    }  # fmt: skip
    assert report.codes["rate_limited"] > 0 and report.codes["invalid_api_key"] > 0
    assert report.codes["(validation array)"] > 0
    assert len(report.created) > 10  # many keys, each with exactly one campaign (checked in violations)
