import gc
from contextlib import asynccontextmanager

from starlette.applications import Starlette

import errorkit
from errorkit import APIKeyAuth, ErrorKit, RateLimiter

store = errorkit.backend_from_env()


@asynccontextmanager
async def lifespan(app: Starlette):
    ...  # connect, register keys, warm caches
    gc.freeze()  # what start-up built leaves the collector's scans
    yield


app = Starlette(lifespan=lifespan)
ErrorKit().install(app, auth=APIKeyAuth(store), rate_limit=RateLimiter(store))
