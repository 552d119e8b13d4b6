"""scheduled releases: an index to find the articles whose time has come

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The release sweep asks "scheduled and due by now?" every few seconds: an index scan,
    # not a walk over every article.
    op.create_index('ix_articles_scheduled', 'articles', ['status', 'published_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_articles_scheduled', table_name='articles')
