import os

import requests
from shop_errors import PaymentProviderDown, shop

from errorkit.client import error_from_response, should_retry

API_URL = os.environ.get("API_URL", "http://127.0.0.1:8000")


def main() -> None:
    response = requests.post(f"{API_URL}/orders/o_7/pay", timeout=10)
    error = error_from_response(response, shop)  # None for a success
    if isinstance(error, PaymentProviderDown):
        print(f"{error.code}: {error.message}")
        print("retry:", should_retry(error), "after", error.retry_after, "s")
        print("x-should-retry:", error.response_headers["x-should-retry"])


if __name__ == "__main__":
    main()
