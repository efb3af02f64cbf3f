"""errorkit: documented, stable API errors for Starlette and FastAPI, and the traffic layer around them.

Everything public is importable from here; the modules behind it are private
(`errorkit._...`) and may move. `errorkit.catalogs` holds the built-in catalogs.
"""

from errorkit import catalogs, client
from errorkit._app.kit import ErrorKit
from errorkit._app.openapi import ErrorSchemaGenerator
from errorkit._common.exceptions import (
    ConfigurationError,
    DefinitionError,
    DuplicateCode,
    ErrorkitError,
    InvalidDetails,
    RedisError,
    Refused,
    StoreDataLost,
    StoreError,
    StoreUnavailable,
    UnknownCode,
)
from errorkit._common.principal import APIKeyRecord, KeyScope, Principal
from errorkit._common.refusal import Refusal
from errorkit._common.request_id import get_request_id
from errorkit._common.user import User
from errorkit._errors.declared import raises
from errorkit._errors.definition import ErrorDefinition
from errorkit._errors.errors import APIError
from errorkit._errors.formats import (
    DetailFormat,
    EnvelopeFormat,
    ErrorContext,
    Format,
    Issue,
    ParsedBody,
    ProblemFormat,
)
from errorkit._errors.reference import Reference, ReferencePage, Table
from errorkit._errors.registry import Registry
from errorkit._observe.log_context import RequestContextFilter
from errorkit._observe.observer import Observer
from errorkit._observe.prometheus import MetricsApp, PrometheusMetrics
from errorkit._stages.auth import APIKeyAuth, get_principal
from errorkit._stages.concurrency import ConcurrencyLimit
from errorkit._stages.failure import FailurePolicy
from errorkit._stages.idempotency import Idempotency, StoredResponses
from errorkit._stages.identity import TrustedProxies, per_user
from errorkit._stages.key_cache import KeyCache
from errorkit._stages.keys import issue_api_key, register_api_key, revoke_api_key, set_workspace_disabled
from errorkit._stages.limits import Limit, RouteLimit, limit
from errorkit._stages.quotas import Hold, Quotas
from errorkit._stages.ratelimit import PlanLimits, RateLimiter
from errorkit._stores import backend_from_env
from errorkit._stores.memory import MemoryBackend
from errorkit._stores.protocols import (
    Backend,
    ConcurrencyStore,
    IdempotencyStore,
    KeyStore,
    QuotaStore,
    RateLimitStore,
)
from errorkit._stores.redis.backend import RedisBackend
from errorkit._stores.redis.connection import Timeouts

__all__ = [
    "APIError",
    "APIKeyAuth",
    "APIKeyRecord",
    "Backend",
    "ConcurrencyLimit",
    "ConcurrencyStore",
    "ConfigurationError",
    "DefinitionError",
    "DetailFormat",
    "DuplicateCode",
    "EnvelopeFormat",
    "ErrorContext",
    "ErrorDefinition",
    "ErrorKit",
    "ErrorSchemaGenerator",
    "ErrorkitError",
    "FailurePolicy",
    "Format",
    "Hold",
    "Idempotency",
    "IdempotencyStore",
    "InvalidDetails",
    "Issue",
    "KeyCache",
    "KeyScope",
    "KeyStore",
    "Limit",
    "MemoryBackend",
    "MetricsApp",
    "Observer",
    "ParsedBody",
    "PlanLimits",
    "Principal",
    "ProblemFormat",
    "PrometheusMetrics",
    "QuotaStore",
    "Quotas",
    "RateLimitStore",
    "RateLimiter",
    "RedisBackend",
    "RedisError",
    "Reference",
    "ReferencePage",
    "Refusal",
    "Refused",
    "Registry",
    "RequestContextFilter",
    "RouteLimit",
    "StoreDataLost",
    "StoreError",
    "StoreUnavailable",
    "StoredResponses",
    "Table",
    "Timeouts",
    "TrustedProxies",
    "UnknownCode",
    "User",
    "backend_from_env",
    "catalogs",
    "client",
    "get_principal",
    "get_request_id",
    "issue_api_key",
    "limit",
    "per_user",
    "raises",
    "register_api_key",
    "revoke_api_key",
    "set_workspace_disabled",
]
__version__ = "0.1.0"
