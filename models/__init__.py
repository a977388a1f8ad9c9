"""SQLAlchemy 2 models, one module per aggregate; Alembic migrations in ``migrations/``.

Importing this package registers every table on :data:`Base.metadata`.
"""

from models.base import Base, utcnow
from models.complaint import (
    Complaint,
    ComplaintEvent,
    ComplaintEvidence,
    ComplaintSettings,
    ReceiptAttempts,
)
from models.conversation import ConversationState
from models.delivery import Delivery
from models.event import OutboxMessage, WebhookEvent
from models.integrity import GiftReport, KbEntry, KbRevision, UnansweredQuestion
from models.office import Office
from models.reminder import Reminder, ReminderChunk, SurveyAsked
from models.simulator import SimMessage, SimReplyToken
from models.staff import AuditEntry, StaffInvite, StaffOffice, StaffUser
from models.survey import (
    CodeAttempts,
    LinkClicks,
    StaffInviteCode,
    StaffMember,
    SurveyAnswered,
    SurveyCampaign,
    TrackedLink,
)
from models.user import LineGroup, LineUser

__all__ = [
    "AuditEntry",
    "Base",
    "CodeAttempts",
    "Complaint",
    "ComplaintEvent",
    "ComplaintEvidence",
    "ComplaintSettings",
    "ReceiptAttempts",
    "LinkClicks",
    "ConversationState",
    "Delivery",
    "GiftReport",
    "KbEntry",
    "KbRevision",
    "LineGroup",
    "LineUser",
    "Office",
    "Reminder",
    "ReminderChunk",
    "OutboxMessage",
    "SimMessage",
    "SimReplyToken",
    "StaffInvite",
    "StaffInviteCode",
    "StaffMember",
    "StaffOffice",
    "StaffUser",
    "SurveyAnswered",
    "SurveyAsked",
    "SurveyCampaign",
    "TrackedLink",
    "UnansweredQuestion",
    "WebhookEvent",
    "utcnow",
]
