"""Sign a token as your identity provider would: `python mint.py alice --tenant acme --scope widgets:write`."""

import argparse
import time

import jwt
from jwt_app import SECRET


def mint(sub: str, tenant: str | None = None, plan: str | None = None, scope: str = "", expires_in: int = 3600) -> str:
    claims = {"sub": sub, "scope": scope, "exp": int(time.time()) + expires_in}
    if tenant is not None:
        claims["tenant"] = tenant
    if plan is not None:
        claims["plan"] = plan
    return jwt.encode(claims, SECRET, algorithm="HS256")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("sub")
    parser.add_argument("--tenant")
    parser.add_argument("--plan")
    parser.add_argument("--scope", default="")
    args = parser.parse_args()
    print(mint(args.sub, args.tenant, args.plan, args.scope))
