import asyncio
import os

import httpx
from shop_errors import OutOfStock, shop

from errorkit.client import UnknownError, async_error_hook

API_URL = os.environ.get("API_URL", "http://127.0.0.1:8000")


async def main() -> None:
    hooks = {"response": [async_error_hook(shop)]}  # raises the typed error of every 4xx and 5xx
    async with httpx.AsyncClient(base_url=API_URL, event_hooks=hooks) as client:
        try:
            await client.post("/orders", json={"sku": "mug-blue", "quantity": 5})
        except OutOfStock as error:
            print(f"{error.code} ({error.status}): {error.message}")
            print("details:", error.details, "request id:", error.request_id)

        try:
            await client.delete("/orders/o_7")
        except UnknownError as error:  # a code the catalog does not define
            print(f"{type(error).__name__}: {error.code} ({error.status}): {error.message}")


if __name__ == "__main__":
    asyncio.run(main())
