"""The shop's error catalog: imported by the server, and by its Python clients."""

from errorkit import Registry, catalogs

shop = Registry("shop", include=[catalogs.GENERIC])  # the generic codes: validation, 404, 500...

OutOfStock = shop.define(
    "out_of_stock",
    status=409,
    message="Only {available} of {sku} left",
    details={"sku": str, "available": int},
)
PaymentProviderDown = shop.define(
    "payment_provider_down",
    status=503,
    message="{provider} is not answering",
    retry_after=20,
    details={"provider": str},
)
