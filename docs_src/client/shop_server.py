from fastapi import FastAPI
from pydantic import BaseModel
from shop_errors import OutOfStock, PaymentProviderDown, shop

from errorkit import ErrorKit

kit = ErrorKit(catalog=shop, format="envelope")
# a code the server added after its clients were released: they do not know it
OrderFrozen = kit.define("order_frozen", status=423, message="Order {order_id} is frozen", details={"order_id": str})
app = FastAPI()
kit.install(app)


class Order(BaseModel):
    sku: str
    quantity: int


@app.post("/orders")
async def create_order(order: Order):
    raise OutOfStock(sku=order.sku, available=2)


@app.post("/orders/{order_id}/pay")
async def pay(order_id: str):
    raise PaymentProviderDown(provider="acme-pay")


@app.delete("/orders/{order_id}")
async def cancel(order_id: str):
    raise OrderFrozen(order_id=order_id)
