import errorkit

kit = errorkit.ErrorKit()
QuotaExceeded = kit.define(
    "quota_exceeded",
    status=402,
    message="You have used {usage} of your {limit} campaigns.",
    details={"usage": int, "limit": int},
)

try:
    raise QuotaExceeded(usage="3")  # a string for an int, and no limit
except errorkit.InvalidDetails as error:
    print(error)

try:
    raise kit.error("quota_exceded", usage=3, limit=3)  # a typo in the code
except errorkit.UnknownCode as error:
    print(error)

try:
    kit.define(  # the same code again, with another status
        "quota_exceeded",
        status=409,
        message="You have used {usage} of your {limit} campaigns.",
        details={"usage": int, "limit": int},
    )
except errorkit.DuplicateCode as error:
    print(error)
