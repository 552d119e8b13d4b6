"""webhook signatures already accepted, so a signed request cannot be replayed in its window

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('webhook_signatures',
    sa.Column('mac', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('mac')
    )
    with op.batch_alter_table('webhook_signatures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_signatures_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('webhook_signatures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_signatures_expires_at'))

    op.drop_table('webhook_signatures')
