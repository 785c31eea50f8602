"""Bare FastAPI baseline for bench/intake.py: the cheapest possible JSON endpoint."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "world"}
