from fastapi import FastAPI, HTTPException

from errorkit import ErrorKit

app = FastAPI()


@app.get("/orders/{order_id}")
async def get_order(order_id: int) -> dict[str, int]:
    if order_id != 1:
        raise HTTPException(404, f"No order {order_id}.")
    return {"id": order_id}


ErrorKit(format="problem").install(app)  # no stage: every error of the app in one format
