"""retired_hash_keys: look-up hash keys of retired DSR_SECRET_KEYs (key rotation)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "retired_hash_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("key_encrypted", sa.String(length=512), nullable=False),
        sa.Column("retired_at", app.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retired_hash_keys")),
    )
    op.create_index(
        op.f("ix_retired_hash_keys_purpose"), "retired_hash_keys", ["purpose"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_retired_hash_keys_purpose"), table_name="retired_hash_keys")
    op.drop_table("retired_hash_keys")
