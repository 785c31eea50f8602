"""Bodies and answers of the token and client routes."""

from typing import Literal

from pydantic import BaseModel, Field

from app.auth.scopes import Role
from app.core.schemas import StrictModel


class ClientCreate(StrictModel):
    name: str = Field(min_length=1, max_length=200, examples=["Acme CRM"])
    role: Role = Field(examples=["integration"])


class ClientCreated(BaseModel):
    client_id: str
    client_secret: str = Field(description="Shown only in this response; store it safely.")
    name: str
    role: Role


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    scope: str
