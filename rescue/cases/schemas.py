"""Request and response bodies for cases (受助人员)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import msgspec

from rescue.alerts.schemas import AlertOut
from rescue.cases.tables import CaseStatus, LeavingCategory, Sex
from rescue.duplicates.schemas import DuplicateWarningOut
from rescue.photos.schemas import PhotoSummary
from rescue.schemas import AwareDatetime

Age = Annotated[int, msgspec.Meta(ge=0, le=120, description="years")]
ShortText = Annotated[str, msgspec.Meta(max_length=300)]
LongText = Annotated[str, msgspec.Meta(max_length=10_000)]


class CaseCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A person taken in. Give ``estimated_age`` or ``age_low``/``age_high`` (or both)."""

    reported_name: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    sex: Sex = Sex.unknown
    estimated_age: Age | None = None
    age_low: Age | None = None
    age_high: Age | None = None
    found_at: AwareDatetime | None = None
    found_place: ShortText = ""
    brought_by: ShortText = ""
    description: LongText = ""
    dialect: Annotated[str, msgspec.Meta(max_length=100)] = ""
    belongings: LongText = ""
    station: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    #: Estimated date of birth; under 16 means leaving only into custody.
    birth_date_estimate: date | None = None
    #: Lacking capacity (mental or intellectual disability): leaving only into custody.
    lacks_capacity: bool = False
    height_cm: Annotated[int, msgspec.Meta(ge=30, le=250)] | None = None
    #: The real admission (入站) of a person admitted before the case is entered
    #: here (历史补录, e.g. a long-term resident): not in the future, not before
    #: ``found_at`` and not before :data:`rescue.cases.services.EARLIEST_ADMISSION`.
    #: Omitted: now.
    admitted_at: AwareDatetime | None = None


class CaseUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Change the assessment fields of a case; omitted fields stay as they are."""

    birth_date_estimate: date | msgspec.UnsetType | None = msgspec.UNSET
    lacks_capacity: bool | msgspec.UnsetType = msgspec.UNSET
    height_cm: Annotated[int, msgspec.Meta(ge=30, le=250)] | msgspec.UnsetType | None = (
        msgspec.UNSET
    )
    reason: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class CurrentPlacement(msgspec.Struct):
    """Where the person is now (the open placement)."""

    id: int
    kind: str
    facility: str
    responsible_contact: str
    started_at: datetime


class TransitionRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Move a case to ``to`` with a reason; ``data`` holds outcome details kept on
    the timeline (e.g. the ticket for left_self). ``identified`` is not accepted
    here: it happens by a reviewer confirming a candidate."""

    to: CaseStatus
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    data: dict[str, Any] = msgspec.field(default_factory=dict)


class TransitionOut(msgspec.Struct):
    case_id: int
    previous: CaseStatus
    status: CaseStatus
    allowed_next: list[CaseStatus]


#: 公民身份号码 (GB 11643-1999): 17 digits and a check digit (0-9 or X).
IdNumber = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{17}[0-9Xx]$")]
Name100 = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Text300 = Annotated[str, msgspec.Meta(max_length=300)]


class IdentityUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Change the identity found; omitted fields stay. ``reason`` goes on the timeline."""

    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    confirmed_name: (
        Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | msgspec.UnsetType
    ) = msgspec.UNSET
    id_number: IdNumber | msgspec.UnsetType | None = msgspec.UNSET
    household_registration: Annotated[str, msgspec.Meta(max_length=300)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    relatives_contact: Annotated[str, msgspec.Meta(max_length=300)] | msgspec.UnsetType = (
        msgspec.UNSET
    )


class IdentityOut(msgspec.Struct):
    """The identity found: confirmed name, 身份证号 (masked for roles that do not
    need it), 户籍地, relatives' contact, and the notice it came from."""

    case_id: int
    confirmed_name: str | None
    id_number: str | None
    id_number_masked: bool
    household_registration: str
    relatives_contact: str
    notice_id: int | None


class TimelineEvent(msgspec.Struct):
    """One timeline entry: who (actor, None = the system), when, what, why."""

    id: int
    at: datetime
    actor_id: int | None
    actor_role: str
    kind: str
    from_status: str | None
    to_status: str | None
    reason: str
    data: dict[str, Any]
    #: An entry recorded later (历史补录): when it happened; ``at`` is when it was
    #: recorded and ``actor_id`` who recorded it.
    occurred_at: datetime | None = None
    entered_later: bool = False


class CaseOut(msgspec.Struct):
    id: int
    reference: str
    display_name: str
    reported_name: str | None
    placeholder_name: str
    sex: Sex
    estimated_age: int | None
    age_low: int | None
    age_high: int | None
    found_at: datetime | None
    found_place: str
    brought_by: str
    description: str
    dialect: str
    belongings: str
    station: str
    status: CaseStatus
    admitted_at: datetime
    created_at: datetime
    updated_at: datetime
    #: When the case was entered into this service; later than ``admitted_at``
    #: for a person admitted before (``entered_later``, 历史补录).
    entered_at: datetime | None = None
    entered_later: bool = False
    birth_date_estimate: date | None = None
    lacks_capacity: bool = False
    height_cm: int | None = None
    #: Possibly under the custody age or lacking capacity: leaves only into custody.
    custody_only: bool = False
    #: The name confirmed at identification (the ID number: GET …/identity).
    confirmed_name: str | None = None
    #: For a closed case: its MCA 离站方式 category (rescue.cases.flows.LEAVING_CATEGORY).
    leaving_category: LeavingCategory | None = None
    photos: list[PhotoSummary] = msgspec.field(default_factory=list)
    #: Detail only: statuses reachable now.
    allowed_next: list[CaseStatus] = msgspec.field(default_factory=list)
    #: Detail only: where the person is now.
    current_placement: CurrentPlacement | None = None
    #: Detail only: the case's due and overdue deadline items, soonest first.
    alerts: list[AlertOut] = msgspec.field(default_factory=list)
    #: Register and detail: open duplicate-intake warnings (the same person may be
    #: registered already, here or at another station). Advisory, never blocking.
    duplicate_warnings: list[DuplicateWarningOut] = msgspec.field(default_factory=list)


class LeavingCount(msgspec.Struct):
    category: LeavingCategory
    label: str
    count: int
    #: How many of them crossed a province (data.cross_province on the closing
    #: transition); the MCA report splits 护送返乡 and 接领返乡 by it.
    cross_province: int


class LeavingReport(msgspec.Struct):
    """Leavings (离站) of one month by MCA 离站方式 category, counted by the date
    (station's timezone) of the closing transition."""

    month: str
    stations: list[str] | None
    total: int
    categories: list[LeavingCount]
