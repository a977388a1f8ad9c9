"""SQLAlchemy 2 models, one module per aggregate; Alembic migrations in ``migrations/``.

Importing this package registers every table on :data:`Base.metadata`.
"""

from models.base import Base, utcnow
from models.conversation import ConversationState
from models.delivery import Delivery
from models.event import OutboxMessage, WebhookEvent
from models.office import Office
from models.simulator import SimMessage, SimReplyToken
from models.staff import AuditEntry, StaffInvite, StaffOffice, StaffUser
from models.user import LineGroup, LineUser

__all__ = [
    "AuditEntry",
    "Base",
    "ConversationState",
    "Delivery",
    "LineGroup",
    "LineUser",
    "Office",
    "OutboxMessage",
    "SimMessage",
    "SimReplyToken",
    "StaffInvite",
    "StaffOffice",
    "StaffUser",
    "WebhookEvent",
    "utcnow",
]
