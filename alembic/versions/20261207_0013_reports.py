"""reports: the receipt-date index on requests, the outbox's alert marker, calendar feeds

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 19:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Must match app.reports.alerts.ALERT_EVENTS: history is marked handled, never mailed.
ALERT_EVENTS = ("fulfilment.failed", "webhook.endpoint_disabled", "request.overdue")


def upgrade() -> None:
    op.create_index("ix_requests_received_at_id", "requests", ["received_at", "id"], unique=False)
    op.create_index(
        "ix_requests_extended_received_at",
        "requests",
        ["received_at"],
        unique=False,
        postgresql_where=sa.text("extended"),
        sqlite_where=sa.text("extended"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("alerted_at", app.models.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_index("ix_outbox_alert_pending", "outbox", ["event_type", "alerted_at"], unique=False)
    # Events raised before alerts existed are not mailed when DSR_ALERT_EMAIL is first set.
    outbox = sa.table(
        "outbox",
        sa.column("event_type", sa.String),
        sa.column("created_at", app.models.UTCDateTime(timezone=True)),
        sa.column("alerted_at", app.models.UTCDateTime(timezone=True)),
    )
    op.execute(
        outbox.update()
        .where(outbox.c.event_type.in_(ALERT_EVENTS))
        .values(alerted_at=outbox.c.created_at)
    )
    op.create_table(
        "calendar_feeds",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", app.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", app.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_feeds")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_calendar_feeds_token_hash")),
    )


def downgrade() -> None:
    op.drop_table("calendar_feeds")
    op.drop_index("ix_outbox_alert_pending", table_name="outbox")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("alerted_at")
    op.drop_index("ix_requests_extended_received_at", table_name="requests")
    op.drop_index("ix_requests_received_at_id", table_name="requests")
