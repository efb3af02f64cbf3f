import asyncio
import itertools

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import errorkit
from errorkit import ErrorKit, Idempotency, StoredResponses

store = errorkit.backend_from_env()
order_ids = itertools.count(1)


async def create_order(request: Request) -> JSONResponse:
    await asyncio.sleep(0.5)  # a slow creation: a retry meanwhile waits for it (wait=2.0 below)
    order_id = f"o_{next(order_ids)}"
    headers = {"Location": f"/orders/{order_id}", "X-Trace-Id": "t-1", "X-Served-By": "api-1"}
    return JSONResponse({"id": order_id}, status_code=201, headers=headers)


async def update_order(request: Request) -> JSONResponse:
    return JSONResponse({"id": request.path_params["order_id"], "updated": next(order_ids)})


async def receive_webhook(request: Request) -> JSONResponse:
    return JSONResponse({"received": next(order_ids)})


app = Starlette(
    routes=[
        Route("/orders", create_order, methods=["POST"]),
        Route("/orders/{order_id}", update_order, methods=["PUT"]),
        Route("/webhooks/stripe", receive_webhook, methods=["POST"]),
    ]
)
idempotency = Idempotency(
    store,
    methods=["POST", "PUT"],  # the methods a key guards (POST alone by default)
    exempt=["/webhooks/*"],  # paths that ignore keys (a trailing * is a prefix)
    ttl=7 * 24 * 3600,  # replay for a week instead of 24 h
    wait=2.0,  # a retry of a request still running waits up to 2 s and replays it, instead of 409
    responses=StoredResponses(replay_headers=["X-Trace-Id"], store_5xx=False, max_bytes=1 << 20),
    max_request_bytes=1 << 20,  # a larger body with a key: 413
    mismatch_code="idempotency_key_reused",
)
ErrorKit(format="envelope").install(app, idempotency=idempotency)  # no auth: keys are per client address
