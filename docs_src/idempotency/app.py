import asyncio
import itertools

from fastapi import FastAPI
from pydantic import BaseModel

import errorkit
from errorkit import APIKeyAuth, ErrorKit, Idempotency, RateLimiter

store = errorkit.backend_from_env()  # REDIS_URL: redis://127.0.0.1:6379/0, or memory:// for one process
kit = ErrorKit(format="envelope")
app = FastAPI()
payment_ids = itertools.count(1)


class Payment(BaseModel):
    amount: int
    currency: str


@app.post("/payments", status_code=201)
async def pay(payment: Payment) -> dict[str, str | int]:
    return {"id": f"pay_{next(payment_ids)}", "amount": payment.amount, "currency": payment.currency}


@app.get("/payments/{payment_id}")
async def payment(payment_id: str) -> dict[str, str]:
    return {"id": payment_id}


@app.post("/reports", status_code=201)
async def create_report() -> dict[str, str]:
    await asyncio.sleep(1)  # a slow request: a retry meanwhile finds it still running
    return {"report": "ready"}


kit.install(
    app,
    auth=APIKeyAuth(store),
    rate_limit=RateLimiter(store, limits="100/minute"),
    idempotency=Idempotency(store, required=["/payments"]),  # a POST /payments without a key: 400
)
