"""ORM models only, one file per aggregate. Importing this package registers them all."""

from app.models.action import Action, ActionPlan, ActionPlanSection, ActionUpdate, action_findings
from app.models.audit import AuditChainHead, AuditEvent
from app.models.base import Base
from app.models.client import ApiClient
from app.models.counter import Counter
from app.models.death import Death, PossibleDuplicate
from app.models.event import ClosedEventMonth, OutboxEvent
from app.models.finding import Finding, Theme
from app.models.history import HistoryImport, HistoryImportProblem, HistoryRecord
from app.models.idempotency import IdempotencyRecord
from app.models.notification import DeathNotification, WorklistClaim
from app.models.oauth import ClientPublicKey, SigningKey, UsedAssertion
from app.models.organisation import CaseShare, Organisation
from app.models.programme import (
    Programme,
    ProgrammeAnswer,
    ProgrammeCase,
    ProgrammeOpinion,
    ProgrammeQuestion,
    ProgrammeRecommendation,
    ProgrammeRecommendationAction,
    ThemeMapping,
)
from app.models.referral import Referral, ReferralTransition
from app.models.review import Review, ReviewPhaseRating, ReviewProblem, ReviewVersion, ScaleLabel
from app.models.screening import (
    ReferralJudgement,
    ReferralJudgementVersion,
    RouteOverride,
    Screening,
    ScreeningVersion,
)
from app.models.secret import ServiceSecret
from app.models.webhook import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookDispatcher,
    WebhookEndpoint,
)

__all__ = [
    "Action",
    "ActionPlan",
    "ActionPlanSection",
    "ActionUpdate",
    "ApiClient",
    "AuditChainHead",
    "AuditEvent",
    "Base",
    "CaseShare",
    "ClientPublicKey",
    "ClosedEventMonth",
    "Counter",
    "Death",
    "DeathNotification",
    "Finding",
    "HistoryImport",
    "HistoryImportProblem",
    "HistoryRecord",
    "IdempotencyRecord",
    "Organisation",
    "OutboxEvent",
    "PossibleDuplicate",
    "Programme",
    "ProgrammeAnswer",
    "ProgrammeCase",
    "ProgrammeOpinion",
    "ProgrammeQuestion",
    "ProgrammeRecommendation",
    "ProgrammeRecommendationAction",
    "Referral",
    "ReferralJudgement",
    "ReferralJudgementVersion",
    "ReferralTransition",
    "Review",
    "ReviewPhaseRating",
    "ReviewProblem",
    "ReviewVersion",
    "RouteOverride",
    "ScaleLabel",
    "Screening",
    "ScreeningVersion",
    "ServiceSecret",
    "SigningKey",
    "Theme",
    "ThemeMapping",
    "UsedAssertion",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookDispatcher",
    "WebhookEndpoint",
    "WorklistClaim",
    "action_findings",
]
