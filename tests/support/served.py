"""Module-level apps for tests that run them under uvicorn."""

from starlette.applications import Starlette
from starlette.routing import Mount

from errorkit import ErrorKit, catalogs
from tests.apps.routes import build_app

starlette_app = build_app("starlette", ErrorKit(catalog=catalogs.DETAIL_API))
fastapi_app = build_app("fastapi", ErrorKit(catalog=catalogs.ENVELOPE_API))

#: Every built-in catalog in every format, each kit on its own sub-app: `/<catalog>/<format>/raise/<code>`.
ROUNDTRIP_KITS = {
    (name, format): ErrorKit(catalog=catalog, format=format)
    for name, catalog in {"detail_api": catalogs.DETAIL_API, "envelope_api": catalogs.ENVELOPE_API}.items()
    for format in ("detail", "envelope", "problem")
}
roundtrip_app = Starlette(
    routes=[
        Mount(f"/{name}/{format}", app=build_app("starlette", kit)) for (name, format), kit in ROUNDTRIP_KITS.items()
    ]
)
