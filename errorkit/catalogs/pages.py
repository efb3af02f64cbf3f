"""What the built-in catalogs' reference pages say besides their codes.

`PAGES` maps a built-in catalog's name to its `ReferencePage`: what `generic` is for; the Ontora
reference's status table (with its success rows), idempotency and rate-limit sections (`detail_api`);
the Orq.ai reference's introduction and the plan table behind `quota_exceeded` (`envelope_api`).
"""

from errorkit._errors.reference import ReferencePage, Table
from errorkit.catalogs.envelope_api import PLAN_LIMITS

DETAIL_PAGE = ReferencePage(
    title="Errors (detail shape)",
    intro=[
        "The API uses standard HTTP status codes. Errors come back as JSON in this shape:",
        '`{"detail": "Workspace not accessible by this API key", "code": "workspace_forbidden"}`',
        "When validation fails (invalid request body), detail is an array of field-level errors "
        '(`{"detail": [{"loc": ["body", "topics", 0, "name"], "msg": "field required", "type": "missing"}]}`).',
        "Success statuses:",
        Table(
            ["Code", "Meaning", "What to do"],
            [
                ["200 OK", "Success", ""],
                ["201 Created", "Resource created", "Capture the returned id"],
                ["204 No Content", "Success, no body", ""],
            ],
        ),
    ],
    outro=[
        "## Idempotency",
        "Safe-by-design endpoints (any GET, DELETE) are naturally idempotent. For POST endpoints, pass an "
        "Idempotency-Key header with a unique value (e.g., a UUID) to make retries safe: "
        "`Idempotency-Key: 2c4a9cf2-...`. "
        "The same key replayed within 24 hours returns the original response without creating a duplicate.",
        "## Rate limits",
        "Rate limits apply per workspace, not per key. Limits are returned in headers on every response:",
        Table(
            ["Header", "Meaning"],
            [
                ["X-RateLimit-Limit", "Limit for the current window"],
                ["X-RateLimit-Remaining", "Calls remaining in this window"],
                ["X-RateLimit-Reset", "Unix timestamp when the window resets"],
                ["Retry-After", "Seconds to wait (only on 429)"],
            ],
        ),
    ],
)

ENVELOPE_PAGE = ReferencePage(
    title="Errors (envelope shape)",
    intro=[
        "Every error response from the Orq.ai API includes an error object with a code, message, and doc_url "
        "field. Use the code to identify the exact failure and follow the resolution steps below.",
    ],
    notes={
        "quota_exceeded": [
            "Plan limits:",
            Table(
                ["Entity", "Developer", "Growth", "Enterprise"],
                [
                    [entity, *("Unlimited" if n is None else str(n) for n in plans.values())]
                    for entity, plans in PLAN_LIMITS.items()
                ],
            ),
        ]
    },
)

GENERIC_PAGE = ReferencePage(
    title="generic: errorkit's default catalog",
    intro=[
        "The codes a new API starts from: one per HTTP error status (what an `HTTPException` or the router "
        "answers) and the codes errorkit's handlers answer a failed validation or a malformed JSON body with. "
        "The page also lists the codes errorkit's stages answer with (API keys, rate limits, idempotency, "
        "quotas, concurrency). Your own codes sit beside them (`kit.define()`). Bodies below are in the detail "
        "format, the catalog's default.",
    ],
)

PAGES = {"generic": GENERIC_PAGE, "detail_api": DETAIL_PAGE, "envelope_api": ENVELOPE_PAGE}
