from errorkit import ErrorKit

kit = ErrorKit()
ProviderOverloaded = kit.define(
    "provider_overloaded",
    status=503,
    message="{provider} is overloaded in region '{region}' ({tier} tier).",
    details={
        "provider": str,  # required
        "region": (str | None, None),  # optional, None by default: left out when not given
        "tier": (str, "standard"),  # optional, another default: always sent
    },
)

left_out = ProviderOverloaded(provider="openai")
print(left_out.details)
print(left_out.message)

given = ProviderOverloaded(provider="openai", region="eu-west")
print(given.details)
print(given.message)
