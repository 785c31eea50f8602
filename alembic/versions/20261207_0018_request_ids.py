"""trace_id on the webhook outbox, mail outbox and fulfilment jobs: the X-Request-ID of the
HTTP request that queued each row, so the worker logs its work under the same id

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 23:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("outbox", "mail_outbox", "fulfilment_jobs")


def upgrade() -> None:
    # Nullable, no default: existing rows and work no HTTP request caused have no id.
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("trace_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True)
            )


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("trace_id")
