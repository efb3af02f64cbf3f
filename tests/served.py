"""Module-level apps for tests that run them under uvicorn."""

from errorkit import ErrorKit, catalogs
from tests.apps import build_app

starlette_app = build_app("starlette", ErrorKit(catalog=catalogs.DETAIL_API))
fastapi_app = build_app("fastapi", ErrorKit(catalog=catalogs.ENVELOPE_API))
