"""Every transition in rescue.cases.flows.TRANSITIONS allowed (for its roles) and
refused (for other roles), and every pair not in the table refused with 409."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest

from rescue.cases import flows
from rescue.cases.events import CaseEvent
from rescue.cases.schemas import CaseCreate
from rescue.cases.services import create_case
from rescue.cases.tables import Case, CaseStatus
from rescue.errors import Conflict, PermissionDenied
from rescue.escorts.tables import Handover, ReceivingParty, ReturnPlan
from rescue.placements.schemas import PlacementCreate
from rescue.placements.services import create_placement
from rescue.placements.tables import PlacementKind
from rescue.users.services import Principal, create_user
from rescue.users.tables import Role
from tests.integration.helpers import admitted_days_ago


async def principal(role: Role) -> Principal:
    name = f"{role.value}-{secrets.token_hex(3)}"
    user_id = await create_user(username=name, role=role.value, station="north")
    return Principal(user_id=user_id, username=name, role=role, station="north")


async def case_in(status: CaseStatus, **fields) -> int:
    staff = await principal(Role.station_staff)
    case = await create_case(
        data=CaseCreate(estimated_age=50, found_place="G318", **fields), by=staff
    )
    # Test set-up: put the case straight into the source status, admitted long
    # enough ago for the rules that need time in care (stranded, settled).
    await Case.update({Case.status: status.value}).where(Case.id == case.id)
    await admitted_days_ago(case.id, 100)
    return case.id


async def satisfy_rules(case_id: int, target: CaseStatus) -> None:
    """Records the rules require before ``target`` (see flows docstring)."""
    if target in flows.HANDOVER_REQUIRED:
        party = flows.HANDOVER_REQUIRED[target] or ReceivingParty.family
        await Handover.insert(
            Handover(
                case=case_id,
                receiving_party=party.value,
                receiver_name="张三",
                id_document_type="居民身份证",
                id_document_number="110101199001011234",
                id_document_checked=True,
                handed_over_at=datetime.now(UTC),
                place="站内",
                sheet_object_key=f"documents/{secrets.token_hex(16)}.pdf",
                sheet_media_type="application/pdf",
                sheet_sha256="0" * 64,
            )
        )
    if target == CaseStatus.return_planned:
        await ReturnPlan.insert(
            ReturnPlan(
                case=case_id,
                destination="四川省广元市",
                transport="train",
                escort_staff=["王"],
                planned_on=datetime.now(UTC).date(),
            )
        )
    if target == CaseStatus.transferred_minor:
        await Case.update({Case.estimated_age: 12}).where(Case.id == case_id)
    if target == CaseStatus.settled:
        await create_placement(
            case_id=case_id,
            data=PlacementCreate(kind=PlacementKind.welfare_home, facility="市社会福利院"),
            by=await principal(Role.station_staff),
        )


TABLE = sorted(flows.TRANSITIONS.values(), key=lambda t: (t.source.value, t.target.value))


@pytest.mark.parametrize("rule", TABLE, ids=lambda t: f"{t.source.value}->{t.target.value}")
async def test_allowed_transition(rule):
    case_id = await case_in(rule.source)
    outsider = next(r for r in Role if r not in rule.roles)
    with pytest.raises(PermissionDenied):
        await flows.transition(
            case_id=case_id, to=rule.target, by=await principal(outsider), reason="x"
        )
    await satisfy_rules(case_id, rule.target)
    role = sorted(rule.roles)[0]
    by = await principal(role)
    data = {"ticket": "K1234 to 成都"} if rule.target == CaseStatus.left_self else None
    previous = await flows.transition(
        case_id=case_id, to=rule.target, by=by, reason="test", data=data
    )
    assert previous == rule.source
    row = await Case.select(Case.status).where(Case.id == case_id).first()
    assert row["status"] == rule.target
    event = (
        await CaseEvent.select()
        .where((CaseEvent.case == case_id) & (CaseEvent.kind == "status_changed"))
        .first()
    )
    assert (event["from_status"], event["to_status"]) == (rule.source, rule.target)
    assert (event["actor_id"], event["actor_role"], event["reason"]) == (
        by.user_id,
        role.value,
        "test",
    )


@pytest.mark.parametrize("source", list(CaseStatus), ids=lambda s: s.value)
async def test_transitions_not_in_table_are_refused_with_409(source):
    case_id = await case_in(source)
    admin = await principal(Role.admin)
    refused = [t for t in CaseStatus if (source, t) not in flows.TRANSITIONS]
    assert refused
    for target in refused:
        with pytest.raises(Conflict) as caught:
            await flows.transition(case_id=case_id, to=target, by=admin, reason="x")
        assert caught.value.extra["current"] == source.value
        assert caught.value.extra["allowed"] == [s.value for s in flows.allowed_next(source)]
    row = await Case.select(Case.status).where(Case.id == case_id).first()
    assert row["status"] == source
    assert not await CaseEvent.exists().where(
        (CaseEvent.case == case_id) & (CaseEvent.kind == "status_changed")
    )


def test_terminal_statuses_have_no_way_out():
    from rescue.cases.tables import TERMINAL_STATUSES

    for status in TERMINAL_STATUSES:
        assert flows.allowed_next(status) == []


@pytest.mark.parametrize(
    "fields",
    [
        {"estimated_age": 12},
        {"age_low": 14, "age_high": 20},
        {"birth_date_estimate": datetime.now(UTC).date() - timedelta(days=365 * 10)},
        {"lacks_capacity": True},
    ],
    ids=["age12", "maybe-15", "born-10y-ago", "lacks-capacity"],
)
async def test_custody_only_person_never_leaves_self(fields):
    staff = await principal(Role.station_staff)
    case = await create_case(data=CaseCreate(found_place="G318", **fields), by=staff)
    assert case.custody_only
    for target in (CaseStatus.left_self, CaseStatus.terminated):
        with pytest.raises(Conflict) as caught:
            await flows.transition(case_id=case.id, to=target, by=staff, reason="wants to go")
        assert target.value not in caught.value.extra["allowed"]
        assert "transferred_minor" in caught.value.extra["allowed"]
    if flows.possibly_minor(await Case.select().where(Case.id == case.id).first()):
        await flows.transition(
            case_id=case.id, to=CaseStatus.transferred_minor, by=staff, reason="to 未保中心"
        )


async def test_adult_may_leave_self():
    staff = await principal(Role.station_staff)
    case = await create_case(data=CaseCreate(estimated_age=40, found_place="G318"), by=staff)
    assert not case.custody_only
    await flows.transition(
        case_id=case.id,
        to=CaseStatus.left_self,
        by=staff,
        reason="ticket",
        data={"ticket": "K1234 to 成都"},
    )


async def test_closing_without_handover_is_refused():
    staff = await principal(Role.station_staff)
    for target in flows.HANDOVER_REQUIRED:
        case_id = await case_in(CaseStatus.return_planned)
        with pytest.raises(Conflict) as caught:
            await flows.transition(case_id=case_id, to=target, by=staff, reason="x")
        assert "handover" in caught.value.extra["requires"]
    # A handover to the origin station does not close the case as handed_to_family.
    case_id = await case_in(CaseStatus.identified)
    await satisfy_rules(case_id, CaseStatus.collected_by_origin)
    with pytest.raises(Conflict):
        await flows.transition(case_id=case_id, to=CaseStatus.handed_to_family, by=staff, reason="")


async def test_settling_needs_a_welfare_home_placement():
    staff = await principal(Role.station_staff)
    case_id = await case_in(CaseStatus.settlement_pending)
    with pytest.raises(Conflict) as caught:
        await flows.transition(case_id=case_id, to=CaseStatus.settled, by=staff, reason="")
    assert "welfare_home" in caught.value.extra["requires"]


async def test_system_may_only_strand():
    case_id = await case_in(CaseStatus.searching)
    with pytest.raises(PermissionDenied):
        await flows.transition(case_id=case_id, to=CaseStatus.left_self, by=None, reason="")
    await flows.transition(case_id=case_id, to=CaseStatus.stranded, by=None, reason="10 days")
    event = (
        await CaseEvent.select()
        .where(CaseEvent.case == case_id)
        .order_by(CaseEvent.id, ascending=False)
        .first()
    )
    assert (event["actor_id"], event["actor_role"]) == (None, "system")


async def test_timeline_events_cannot_be_edited_or_deleted():
    import asyncpg

    case_id = await case_in(CaseStatus.admitted)
    with pytest.raises(asyncpg.exceptions.RaiseError, match="append-only"):
        await CaseEvent.update({CaseEvent.reason: "rewritten"}).where(CaseEvent.case == case_id)
    with pytest.raises(asyncpg.exceptions.RaiseError, match="append-only"):
        await CaseEvent.delete().where(CaseEvent.case == case_id)
    assert await CaseEvent.count().where(CaseEvent.case == case_id) == 1


async def test_left_self_needs_the_ticket(client, staff):
    from tests.integration.helpers import new_case

    case = await new_case(client, staff)
    for data in (None, {}, {"ticket": "  "}):
        response = await client.post(
            f"/api/cases/{case['id']}/transitions",
            json={
                "to": "left_self",
                "reason": "identity known",
                **({"data": data} if data else {}),
            },
            headers=staff,
        )
        assert response.status_code == 400, response.text
        assert "ticket" in response.json()["detail"]
    assert (await client.get(f"/api/cases/{case['id']}", headers=staff)).json()[
        "status"
    ] == "admitted"
    ok = await client.post(
        f"/api/cases/{case['id']}/transitions",
        json={"to": "left_self", "reason": "identity known", "data": {"ticket": "K1234 to 成都"}},
        headers=staff,
    )
    assert ok.status_code == 200, ok.text
