"""programs: survey answers, referrals, a contact's email unsubscribe, an account's timezone and referrer

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 18:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unsubscribed", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("timezone", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("referred_by", sa.String(255), nullable=True))
    op.create_table(
        "survey_answers",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("contact_id", sa.Integer(), sa.ForeignKey("contacts.id", ondelete="SET NULL"), nullable=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("answered_at", sa.DateTime(), nullable=False),
        sa.Column("vendor", sa.String(16), nullable=False),
        sa.Column("external_id", sa.String(128), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=True),
        sa.Column("remark", sa.Text(), nullable=True),
        sa.UniqueConstraint("vendor", "external_id"),
    )
    op.create_index("ix_survey_answers_account_at", "survey_answers", ["account_id", "answered_at"])
    op.create_table(
        "referrals",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("referrer_account_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("referred_name", sa.String(255), nullable=True),
        sa.Column("referred_domain", sa.String(255), nullable=True),
        sa.Column("program", sa.String(64), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("dedupe_key", sa.String(255), nullable=False, unique=True),
        sa.Column("referred_account_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("attributed_at", sa.DateTime(), nullable=True),
        sa.Column("arr_attributed", sa.Float(), nullable=True),
    )  # fmt: skip
    op.create_index("ix_referrals_referrer_account_id", "referrals", ["referrer_account_id"])


def downgrade() -> None:
    op.drop_index("ix_referrals_referrer_account_id", "referrals")
    op.drop_table("referrals")
    op.drop_index("ix_survey_answers_account_at", "survey_answers")
    op.drop_table("survey_answers")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("referred_by")
        batch_op.drop_column("timezone")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("unsubscribed")
