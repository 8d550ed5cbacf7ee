"""The framework's own limit: a bare FastAPI endpoint returning a constant."""

from fastapi import FastAPI

app = FastAPI()

CONSTANT = {"grid": {"code": "340503001001001"}, "community": {"code": "340503001001"}}


@app.get("/bare")
async def bare() -> dict[str, object]:
    return CONSTANT
