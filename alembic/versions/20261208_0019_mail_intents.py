"""mail intents: the acknowledgement is queued without subject or bodies (both nullable) and
rendered by the worker from render_context (JSON, no personal data) at send time

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What a pending intent becomes on downgrade: the older worker cannot render one.
DOWNGRADE_ERROR = "unsent intent dropped by downgrade (no renderer before 0019)"


def upgrade() -> None:
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.alter_column(
            "subject", existing_type=sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True
        )
        batch_op.alter_column("body_encrypted", existing_type=sa.Text(), nullable=True)
        batch_op.add_column(sa.Column("render_context", sa.JSON(), nullable=True))


def downgrade() -> None:
    # Fail unsent intents for good and wipe them, as the worker does with a hopeless message.
    op.execute(
        sa.text(
            "UPDATE mail_outbox SET status = 'failed', last_error = :error, "
            "recipient_encrypted = '', claimed_until = NULL "
            "WHERE body_encrypted IS NULL AND status = 'pending'"
        ).bindparams(error=DOWNGRADE_ERROR)
    )
    # Sent or failed intents kept no subject or body: empty, as a wiped message's body is.
    op.execute("UPDATE mail_outbox SET body_encrypted = '' WHERE body_encrypted IS NULL")
    op.execute("UPDATE mail_outbox SET subject = '' WHERE subject IS NULL")
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.drop_column("render_context")
        batch_op.alter_column("body_encrypted", existing_type=sa.Text(), nullable=False)
        batch_op.alter_column(
            "subject", existing_type=sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False
        )
