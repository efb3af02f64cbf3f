from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from errorkit import ErrorKit, Idempotency, backend_from_env

kit = ErrorKit()  # the format of errorkit's own answers: the generic catalog's `detail`
OrderNotFound = kit.define("order_not_found", status=404, message="No order {order_id}.", details={"order_id": str})


async def create_order(request: Request) -> Response:
    body = await request.json()
    return JSONResponse({"id": "o_1", "amount": body["amount"]}, status_code=201)


async def get_order(request: Request) -> Response:
    raise OrderNotFound(order_id=request.path_params["order_id"])  # errorkit's error: the kit answers it


async def not_found(request: Request, exc: Exception) -> Response:  # your handlers, as before
    return JSONResponse({"message": "nothing here"}, status_code=404)


async def server_error(request: Request, exc: Exception) -> Response:
    return PlainTextResponse("our own 500", status_code=500)


store = backend_from_env()  # REDIS_URL
app = Starlette(
    routes=[Route("/orders", create_order, methods=["POST"]), Route("/orders/{order_id}", get_order)],
    exception_handlers={404: not_found, 500: server_error},
)
kit.install(app, handlers=False, idempotency=Idempotency(store))  # idempotency alone
