"""errorkit: documented, stable API errors for Starlette and FastAPI."""

from errorkit import catalogs
from errorkit.errors import APIError, DuplicateCode, InvalidDetails, UnknownCode
from errorkit.formats import DetailFormat, EnvelopeFormat, ErrorContext, Format, Issue, ProblemFormat
from errorkit.kit import ErrorKit
from errorkit.registry import ErrorDefinition, Registry
from errorkit.request_id import get_request_id

__all__ = [
    "APIError",
    "DetailFormat",
    "DuplicateCode",
    "EnvelopeFormat",
    "ErrorContext",
    "ErrorDefinition",
    "ErrorKit",
    "Format",
    "InvalidDetails",
    "Issue",
    "ProblemFormat",
    "Registry",
    "UnknownCode",
    "catalogs",
    "get_request_id",
]
__version__ = "0.1.0"
