"""reference/defaults.md: every option of every stage is in its table, with its default exactly as the signature has it."""

import inspect
import re
import time

import errorkit
from tests.docs.support import page, section

TABLES = {
    "## `ErrorKit(...)`": errorkit.ErrorKit,
    "## `kit.install(app, ...)`": errorkit.ErrorKit.install,
    "## `APIKeyAuth(store, ...)`": errorkit.APIKeyAuth,
    "## `RateLimiter(store, ...)`": errorkit.RateLimiter,
    "## `Idempotency(store, ...)`": errorkit.Idempotency,
    "## `Quotas(store, limits=..., ...)`": errorkit.Quotas,
    "## `ConcurrencyLimit(store, ...)`": errorkit.ConcurrencyLimit,
    "## `FailurePolicy(mode, ...)` (every `on_failure=`)": errorkit.FailurePolicy,
    "## `RedisBackend(url, ...)`": errorkit.RedisBackend,
}
#: The positional parameters a table lists too (besides every keyword-only one).
POSITIONAL = {"mode", "url"}


def _tables() -> dict[str, str]:
    headings = re.findall(r"^## .+$", page("reference/defaults.md"), re.M)
    assert headings == list(TABLES), "the page's sections are the stages, in this order"
    return {heading: section("reference/defaults.md", heading) for heading in TABLES}


def test_the_defaults_tables_are_the_signatures() -> None:
    """Every keyword option (and `FailurePolicy`'s mode) is a row, in the signature's order, with its default."""
    for heading, table in _tables().items():
        target = TABLES[heading]
        rows = re.findall(r"^\| `(\w+)` \| (.+?) \| .+ \|$", table, re.M)
        written = dict(rows)
        assert len(written) == len(rows), heading

        parameters = list(inspect.signature(target).parameters.values())
        options = [p for p in parameters if p.kind is p.KEYWORD_ONLY or p.name in POSITIONAL]
        assert list(written) == [p.name for p in options], heading
        for option in options:
            if option.default is inspect.Parameter.empty:
                assert written[option.name] == "(required)", (heading, option.name)
            else:
                value = eval(written[option.name].strip("`"), {**vars(errorkit), "time": time})
                assert value == option.default, (heading, option.name)


def test_the_nested_defaults_are_the_objects() -> None:
    """The defaults the tables spell out inside a row (`KeyCache()`, `StoredResponses()`) are those objects' own."""
    tables = _tables()
    cache = errorkit.KeyCache()
    row = re.search(r"^\| `cache` \| .+$", tables["## `APIKeyAuth(store, ...)`"], re.M)
    assert row is not None
    assert f"`ttl={cache.ttl!r}`" in row[0] and f"`size={cache.size}`" in row[0]
    assert f"`stale_for={cache.stale_for!r}` s" in row[0] and f"`track={cache.track!r}`" in row[0]

    responses = errorkit.StoredResponses()
    row = re.search(r"^\| `responses` \| .+$", tables["## `Idempotency(store, ...)`"], re.M)
    assert row is not None
    assert f"`replay_headers={responses.replay_headers!r}`" in row[0]
    assert f"`store_5xx={responses.store_5xx!r}`" in row[0] and f"`max_bytes={responses.max_bytes}`" in row[0]


def test_the_timeouts_in_the_redis_table_are_the_defaults() -> None:
    row = re.search(r"^\| `timeout` \| .+$", _tables()["## `RedisBackend(url, ...)`"], re.M)
    assert row is not None
    written = re.search(r"`(Timeouts\(.+?\))`", row[0])
    assert written is not None and eval(written[1], vars(errorkit)) == errorkit.Timeouts()
