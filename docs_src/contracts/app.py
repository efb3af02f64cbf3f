from fastapi import FastAPI

import errorkit
from errorkit import ErrorKit

kit = ErrorKit(doc_url="https://api.example.com/errors/{code}")
kit.define(
    "order_locked",
    status=409,
    message="Order {order_id} is being shipped and can no longer change.",
    when="The order has left the warehouse.",
    fix="Create a return instead.",
    details={"order_id": str},
)
app = FastAPI()


@app.get("/orders/{order_id}")
async def read_order(order_id: str) -> dict[str, str]:
    return {"id": order_id}


@app.patch("/orders/{order_id}")
@errorkit.raises("order_locked")
async def change_order(order_id: str) -> dict[str, str]:
    raise kit.error("order_locked", order_id=order_id)


@app.delete("/orders/{order_id}", status_code=204)
async def cancel_order(order_id: str) -> None:
    return None


kit.install(app)
