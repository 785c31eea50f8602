"""request_messages (correspondence with the subject) and requests.verification_reminded_at

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 19:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.models

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "request_messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("direction", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("text_encrypted", sa.Text(), nullable=False),
        sa.Column("author", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("mail_id", sa.Uuid(), nullable=True),
        sa.Column("delivery_status", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
        sa.Column("delivered_at", app.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivery_attempts", sa.Integer(), nullable=False),
        sa.Column("received_at", app.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", app.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_request_messages_request_id_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_messages")),
    )
    op.create_index(
        "ix_request_messages_request_id_created_at",
        "request_messages",
        ["request_id", "created_at"],
        unique=False,
    )
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "verification_reminded_at", app.models.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_column("verification_reminded_at")
    op.drop_index("ix_request_messages_request_id_created_at", table_name="request_messages")
    op.drop_table("request_messages")
