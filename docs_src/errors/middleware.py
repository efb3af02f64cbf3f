from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

import errorkit

kit = errorkit.ErrorKit(format="problem")
app = FastAPI()
app.add_middleware(CORSMiddleware, allow_origins=["https://app.example.com"], expose_headers=["X-Request-ID"])
kit.install(app)  # after add_middleware(): the 500 of a crash passes out through CORS


@app.get("/reports/{report_id}")
async def report(report_id: str):
    return {"pages": 10 // 0}
