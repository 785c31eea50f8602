"""status_page_hits: the status page's rate-limit counters, shared by every API process

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "status_page_hits",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("window_start", app.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key_hash", "window_start", name=op.f("pk_status_page_hits")),
    )
    op.create_index(
        "ix_status_page_hits_window_start", "status_page_hits", ["window_start"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_status_page_hits_window_start", table_name="status_page_hits")
    op.drop_table("status_page_hits")
