from fastapi import FastAPI
from pydantic import BaseModel

import errorkit


class Error(BaseModel):  # the app's own model called Error
    line: int
    text: str


class Report(BaseModel):
    errors: list[Error]


kit = errorkit.ErrorKit(format="problem")
app = FastAPI()


@app.post("/imports/check")
async def check_import() -> Report:
    return Report(errors=[Error(line=3, text="unknown column 'budjet'")])


kit.install(app)
