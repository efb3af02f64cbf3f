from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import errorkit
from errorkit import ErrorKit, RateLimiter

store = errorkit.backend_from_env()
provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))  # or your OTLP exporter


async def search(request: Request) -> JSONResponse:
    return JSONResponse({"results": []})


async def export(request: Request) -> JSONResponse:
    raise ZeroDivisionError("division by zero")


app = Starlette(routes=[Route("/search", search), Route("/export", export)])
ErrorKit().install(app, rate_limit=RateLimiter(store, limits="1/minute", routes={"/export": None}))
traced = OpenTelemetryMiddleware(app, tracer_provider=provider)  # serve this one: uvicorn tracing:traced
