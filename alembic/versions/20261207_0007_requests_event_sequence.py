"""requests.event_sequence: the per-request number each webhook event carries

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("event_sequence", sa.Integer(), server_default="0", nullable=False)
        )
    # Existing requests continue from the events they already announced.
    op.execute(
        "UPDATE requests SET event_sequence = "
        "(SELECT count(*) FROM outbox WHERE outbox.request_id = requests.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_column("event_sequence")
