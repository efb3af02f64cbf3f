from errorkit import ErrorKit, Registry, catalogs

# one catalog per part of the API, declared where that part lives
billing = Registry("billing")
CardDeclined = billing.define(
    "card_declined",
    status=402,
    message="The card was declined ({decline_code}).",
    when="The card's issuer refused the payment.",
    fix="Use another card, or ask the issuer why.",
    details={"decline_code": str},
    group="billing",
)

shipping = Registry("shipping")
shipping.define(
    "address_undeliverable",
    status=422,
    message="We cannot deliver to {country}.",
    details={"country": str},
    group="shipping",
)

kit = ErrorKit(format="problem", doc_url="https://docs.example.com/errors/{code}")  # starts from catalogs.GENERIC
kit.include(billing)
kit.include(shipping)

# a catalog shared by several kits (a server and its clients) includes the generic codes itself
shop = Registry("shop", include=[catalogs.GENERIC, billing, shipping])
