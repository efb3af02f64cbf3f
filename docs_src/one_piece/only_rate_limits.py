from fastapi import FastAPI
from pydantic import BaseModel

import errorkit
from errorkit import ErrorKit, RateLimiter, backend_from_env

app = FastAPI()


class Order(BaseModel):
    amount: int


@app.post("/orders", status_code=201)
@errorkit.limit("2/minute")
async def create_order(order: Order) -> Order:
    return order


store = backend_from_env()
ErrorKit().install(app, handlers=False, rate_limit=RateLimiter(store))  # rate limits alone
