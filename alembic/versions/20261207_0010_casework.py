"""casework: assignee, subject hashes, duplicates, notes

The subject hashes of existing requests stay null: they are keyed with DSR_SECRET_KEY, which a
migration does not know. So requests logged before this migration are neither counted in a
subject's history nor found as duplicates; their own history (computed from their identities
when viewed) does count the requests logged after it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 19:05:09.988062
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.models

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "request_notes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("author", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("text_encrypted", sa.Text(), nullable=False),
        sa.Column("created_at", app.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"], ["requests.id"], name=op.f("fk_request_notes_request_id_requests")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_notes")),
    )
    with op.batch_alter_table("request_notes", schema=None) as batch_op:
        batch_op.create_index("ix_request_notes_request_id_id", ["request_id", "id"], unique=False)

    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("assignee", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "subject_email_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column(
                "subject_phone_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column(
                "subject_customer_id_hash",
                sqlmodel.sql.sqltypes.AutoString(length=64),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("possible_duplicate_of", sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f("ix_requests_assignee"), ["assignee"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_requests_subject_customer_id_hash"),
            ["subject_customer_id_hash"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_requests_subject_email_hash"), ["subject_email_hash"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_requests_subject_phone_hash"), ["subject_phone_hash"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_requests_subject_phone_hash"))
        batch_op.drop_index(batch_op.f("ix_requests_subject_email_hash"))
        batch_op.drop_index(batch_op.f("ix_requests_subject_customer_id_hash"))
        batch_op.drop_index(batch_op.f("ix_requests_assignee"))
        batch_op.drop_column("possible_duplicate_of")
        batch_op.drop_column("subject_customer_id_hash")
        batch_op.drop_column("subject_phone_hash")
        batch_op.drop_column("subject_email_hash")
        batch_op.drop_column("assignee")

    with op.batch_alter_table("request_notes", schema=None) as batch_op:
        batch_op.drop_index("ix_request_notes_request_id_id")

    op.drop_table("request_notes")
