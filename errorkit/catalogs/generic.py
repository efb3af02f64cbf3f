"""One code per HTTP error status, plus the codes the handlers use for bad requests.

The "when" and "fix" texts of the statuses the Ontora reference (`DETAIL_API`) lists are its status
table's "Meaning" and "What to do" columns; messages are the HTTP reason phrases, the
same text FastAPI and Starlette put in `detail`, so existing clients keep working.
"""

from typing import Any

from errorkit._errors.registry import Registry

GENERIC = Registry("generic", format="detail")
"""The default catalog: one code per HTTP error status (`not_found`, `too_many_requests`...), and the
codes of bad requests (`invalid_json`, `invalid_request_body`, `invalid_request_parameters`), in
the `detail` format. A new API starts from it, or includes it in a catalog of its own.
"""

Issues = list[dict[str, Any]]

_STATUSES: list[tuple[int, str, str, str, str]] = [
    # status, code, message, when, fix
    (400, "bad_request", "Bad Request", "Malformed request", "Fix the request body"),
    (401, "unauthorized", "Unauthorized", "Missing or invalid credentials", "Check X-API-Key or Authorization header"),
    (
        403,
        "forbidden",
        "Forbidden",
        "Authenticated but not allowed",
        "Add the missing scope, or you\u2019re hitting a workspace you don\u2019t belong to",
    ),
    (404, "not_found", "Not Found", "Resource doesn\u2019t exist", "Verify the id"),
    (
        405,
        "method_not_allowed",
        "Method Not Allowed",
        "The route does not accept this HTTP method",
        "Use one of the methods listed in the Allow header",
    ),
    (406, "not_acceptable", "Not Acceptable", "No representation matches the Accept header", "Accept application/json"),
    (
        408,
        "request_timeout",
        "Request Timeout",
        "The request took too long to arrive or to process",
        "Retry the request",
    ),
    (
        409,
        "conflict",
        "Conflict",
        "Resource isn\u2019t in the expected state",
        "Check the error code \u2014 e.g., synthesis_pending",
    ),
    (410, "gone", "Gone", "The resource existed but was removed", "Stop using this resource"),
    (
        413,
        "payload_too_large",
        "Payload Too Large",
        "The request body is larger than the server accepts",
        "Send a smaller body",
    ),
    (
        415,
        "unsupported_media_type",
        "Unsupported Media Type",
        "The body's content type is not accepted",
        "Send the body as application/json",
    ),
    (422, "validation_error", "Unprocessable Entity", "Validation error", "Fix the field-level issues in detail"),
    (429, "too_many_requests", "Too Many Requests", "Rate limited", "Honor Retry-After"),
    (
        500,
        "internal_error",
        "Internal Server Error",
        "Bug on our side",
        "Retry; if persistent, contact support with the request id",
    ),
    (
        501,
        "not_implemented",
        "Not Implemented",
        "The server does not support this operation",
        "Do not retry; use another operation",
    ),
    (502, "bad_gateway", "Bad Gateway", "An upstream service returned an invalid response", "Retry with backoff"),
    (503, "service_unavailable", "Service Unavailable", "Temporary outage", "Retry with backoff"),
    (504, "gateway_timeout", "Gateway Timeout", "An upstream service did not answer in time", "Retry with backoff"),
]

#: Optional details of some statuses: FastAPI's validation issues; the dependency a 503 names
#: (a store a stage fails closed on), shown by the shapes that have details.
_DETAILS: dict[str, dict[str, Any]] = {
    "validation_error": {"issues": (Issues | None, None)},
    "service_unavailable": {"dependency": (str | None, None)},
}

for _status, _code, _message, _when, _fix in _STATUSES:
    GENERIC.define(
        _code,
        status=_status,
        message=_message,
        when=_when,
        fix=_fix,
        group="http",
        details=_DETAILS.get(_code),
    )
    GENERIC.map_status(_status, _code)

GENERIC.define(
    "invalid_json",
    status=400,
    message="The request body is not valid JSON.",
    when="The request body could not be parsed as JSON.",
    fix="Send a well-formed JSON document with Content-Type: application/json.",
    group="validation",
)
GENERIC.define(
    "invalid_request_body",
    status=400,
    message="The request body failed schema validation.",
    when="The request body failed schema validation. The error details include an issues array "
    "describing each validation failure.",
    fix="Inspect the issues array in the error response to identify the fields that failed "
    "validation. Correct the request body to match the expected schema.",
    group="validation",
    details={"issues": Issues},
)
GENERIC.define(
    "invalid_request_parameters",
    status=400,
    message="The request parameters failed validation.",
    when="A path, query, header or cookie parameter failed validation. The error details include "
    "an issues array describing each validation failure.",
    fix="Inspect the issues array in the error response and correct the named parameters.",
    group="validation",
    details={"issues": Issues},
)
