"""Bodies and answers of the token and client routes."""

from datetime import datetime
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


class ClientPublic(BaseModel):
    """An API client as listed; its secret is never shown again."""

    client_id: str
    name: str
    role: Role
    active: bool = Field(description="False once disabled: its tokens and secret are refused.")
    created_at: datetime
    disabled_at: datetime | None
    secret_rotated_at: datetime | None = Field(
        description="When the secret was last replaced; tokens issued before are refused."
    )


class ClientSecretRotated(ClientCreated):
    client_secret: str = Field(
        description="The new secret, shown only in this response; the old one no longer works."
    )
    secret_rotated_at: datetime


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    scope: str
