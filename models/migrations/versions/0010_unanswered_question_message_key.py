"""unanswered questions: keyed hash of the LINE message, so an unsend deletes the question

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('unanswered_questions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('message_key', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_unanswered_questions_message_key'), ['message_key'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('unanswered_questions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_unanswered_questions_message_key'))
        batch_op.drop_column('message_key')
