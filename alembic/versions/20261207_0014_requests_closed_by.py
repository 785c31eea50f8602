"""requests.closed_by, and the completed requests' index for the summary's percentiles

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 22:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The audit events that close a request; the actor of the latest one closed it.
CLOSING_EVENTS = ("request.rejected", "request.cancelled", "request.completed")


def upgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("closed_by", sa.String(length=64), nullable=True))
    requests = sa.table(
        "requests",
        sa.column("id", sa.Uuid),
        sa.column("closed_at", sa.DateTime),
        sa.column("closed_by", sa.String),
    )
    events = sa.table(
        "request_events",
        sa.column("id", sa.Integer),
        sa.column("request_id", sa.Uuid),
        sa.column("type", sa.String),
        sa.column("actor", sa.String),
    )
    closer = (
        sa.select(events.c.actor)
        .where(events.c.request_id == requests.c.id, events.c.type.in_(CLOSING_EVENTS))
        .order_by(events.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    op.execute(requests.update().where(requests.c.closed_at.is_not(None)).values(closed_by=closer))
    op.create_index(
        "ix_requests_completed_received_at",
        "requests",
        ["received_at"],
        unique=False,
        postgresql_include=["closed_at"],
        postgresql_where=sa.text("status = 'completed'"),
        sqlite_where=sa.text("status = 'completed'"),
    )


def downgrade() -> None:
    op.drop_index("ix_requests_completed_received_at", table_name="requests")
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_column("closed_by")
