"""Comparing an external record with the people in care and the open notices.

Attributes only (faces of external lists are not imported yet). A hit needs:
- the same ID number (身份证号) — enough on its own; or
- the same name, written the same or read the same in pinyin (so variant and
  traditional characters, 張建國 / 张建国, and homophone misspellings by a
  clerk who heard the name agree; tones are ignored), with no contradiction
  (known sexes differ; age ranges more than :data:`AGE_SLACK` years apart), and
  at least one more agreeing attribute: age, place or date.

Score (0..1, for ordering warnings only): 1.0 for an ID number; otherwise 0.5
for the name (0.4 by pinyin only) plus 0.15 each for sex, age, place and date.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pypinyin import lazy_pinyin

from rescue import clock
from rescue.cases.tables import IN_CARE_STATUSES, Case
from rescue.i18n import N_, _
from rescue.notices.tables import Notice, NoticeStatus

__all__ = ["AGE_SLACK", "Hit", "Target", "TargetIndex", "compare", "explain", "name_keys"]

#: What each kind of evidence says, for the warning's explanation (translated when shown).
EVIDENCE_TEXT = {
    "id_number": N_("the same ID number"),
    "name": N_("the same name"),
    "name_pinyin": N_("the same name in pinyin (variant characters)"),
    "sex": N_("the same sex"),
    "age": N_("ages that agree"),
    "place": N_("places that agree"),
    "date": N_("dates close together"),
    "face": N_("close faces"),
}


def explain(evidence: list[str]) -> str:
    """The warning's explanation in the active locale: what agrees, in order
    (e.g. 依据：姓名拼音相同（异体字）、性别相同、年龄相符)."""
    parts = [_(EVIDENCE_TEXT[e]) if e in EVIDENCE_TEXT else e for e in evidence]
    return _("agreeing: {evidence}", evidence=_("; ").join(parts))


#: Years of tolerance on each side of an age range (visual estimates, the
#: stations' ±5 convention; see rescue.matching.scoring for the notices' rule).
AGE_SLACK = 5
#: Days between an external record's date and a case's found date / a notice's
#: missing-since date that still count as agreeing.
DATE_SLACK_DAYS = 90


def name_keys(name: str) -> tuple[str, str]:
    """(normalised name, pinyin key) of a name; empty strings when there is none."""
    norm = "".join(unicodedata.normalize("NFKC", name or "").split()).lower()
    if not norm:
        return "", ""
    return norm, "".join(lazy_pinyin(norm)).lower()


@dataclass
class Target:
    kind: str  # case | notice
    id: int
    station: str
    name: str
    pinyin: str
    sex: str
    ages: tuple[int, int] | None
    place: str
    on: date | None


@dataclass
class Hit:
    target: Target
    evidence: list[str]
    score: float
    explanation: str


def _years_since(d: date | None) -> int:
    return 0 if d is None else max(0, (clock.today() - d).days // 365)


def _case_target(row: dict[str, Any]) -> Target:
    norm, py = name_keys(row["reported_name"] or "")
    ages = None
    if row["age_low"] is not None and row["age_high"] is not None:
        ages = (int(row["age_low"]), int(row["age_high"]))
    elif row["estimated_age"] is not None:
        ages = (int(row["estimated_age"]) - AGE_SLACK, int(row["estimated_age"]) + AGE_SLACK)
    if row["birth_date_estimate"] is not None:
        age = _years_since(row["birth_date_estimate"])
        ages = (age - AGE_SLACK, age + AGE_SLACK)
    found = row["found_at"]
    return Target(
        "case",
        int(row["id"]),
        row["station"],
        norm,
        py,
        row["sex"],
        ages,
        row["found_place"] or "",
        found.date() if found is not None else None,
    )


def _notice_target(row: dict[str, Any]) -> Target:
    norm, py = name_keys(row["name"])
    ages = None
    if row["date_of_birth"] is not None:
        age = _years_since(row["date_of_birth"])
        ages = (age, age)
    elif row["age_when_missing"] is not None:
        age = int(row["age_when_missing"]) + _years_since(row["missing_since"])
        ages = (age - AGE_SLACK, age + AGE_SLACK)
    return Target(
        "notice",
        int(row["id"]),
        "",
        norm,
        py,
        row["sex"],
        ages,
        row["last_seen_place"] or "",
        row["missing_since"],
    )


@dataclass
class TargetIndex:
    """People in care and open notices, indexed by the pinyin of their names.

    Built once per import run: memory is one small object per named person in
    care or open notice (~300 bytes), not per external record.
    """

    by_pinyin: dict[str, list[Target]] = field(default_factory=dict)
    by_id_number: dict[str, list[Target]] = field(default_factory=dict)
    #: Every person in care and open notice, named or not (face hits).
    by_key: dict[tuple[str, int], Target] = field(default_factory=dict)

    @classmethod
    async def build(cls) -> TargetIndex:
        index = cls()
        cases = await Case.select().where(Case.status.is_in([s.value for s in IN_CARE_STATUSES]))
        notices = await Notice.select().where(Notice.status == NoticeStatus.open.value)
        for target in [*map(_case_target, cases), *map(_notice_target, notices)]:
            index.by_key[(target.kind, target.id)] = target
            if target.pinyin:
                index.by_pinyin.setdefault(target.pinyin, []).append(target)
        if hasattr(Case, "id_number"):  # once the workflow records ID numbers on cases
            for row in cases:
                if row.get("id_number"):
                    index.by_id_number.setdefault(row["id_number"], []).append(_case_target(row))
        return index

    def hits(
        self, fields: dict[str, str], faces: dict[tuple[str, int], float] | None = None
    ) -> list[Hit]:
        """Every target the record hits, best first.

        ``faces``: (kind, id) → face distance of the targets whose faces are within
        the matcher's threshold of the record's photo (rescue.imports.photos); a
        face hit alone is a hit, and adds ``face`` to an attribute hit's evidence.
        """
        found: dict[tuple[str, int], Hit] = {}
        for target in self.by_id_number.get(fields.get("id_number", ""), []):
            found[(target.kind, target.id)] = Hit(target, ["id_number"], 1.0, "same ID number")
        _norm, py = name_keys(fields.get("name", ""))
        for target in self.by_pinyin.get(py, []) if py else []:
            if (target.kind, target.id) in found:
                continue
            hit = compare(fields, target)
            if hit is not None:
                found[(target.kind, target.id)] = hit
        for key, distance in (faces or {}).items():
            person = self.by_key.get(key)
            if person is None:  # not in care any more, or the notice is closed
                continue
            score = round(max(0.0, 1.0 - distance), 2)
            if key in found:
                hit = found[key]
                evidence = [*hit.evidence, "face"]
                found[key] = Hit(person, evidence, max(hit.score, score), explain(evidence))
            else:
                found[key] = Hit(person, ["face"], score, explain(["face"]))
        return sorted(found.values(), key=lambda h: -h.score)


def _record_ages(fields: dict[str, str]) -> tuple[int, int] | None:
    birth = fields.get("birth_date")
    if birth:
        years = clock.today().year - int(birth[:4])
        return (years - 1, years)
    age = fields.get("age")
    if age:
        low, _sep, high = age.partition("-")
        return (int(low), int(high or low))
    return None


def compare(fields: dict[str, str], target: Target) -> Hit | None:
    """The hit of one record on one target with the same name key, or None."""
    norm, py = name_keys(fields.get("name", ""))
    if not py or py != target.pinyin:
        return None
    evidence = ["name" if norm == target.name else "name_pinyin"]
    score = 0.5 if evidence[0] == "name" else 0.4
    sex = fields.get("sex", "unknown")
    if "unknown" not in {sex, target.sex}:
        if sex != target.sex:
            return None
        evidence.append("sex")
        score += 0.15
    mine = _record_ages(fields)
    if mine is not None and target.ages is not None:
        if mine[1] + AGE_SLACK < target.ages[0] or target.ages[1] + AGE_SLACK < mine[0]:
            return None
        evidence.append("age")
        score += 0.15
    place = "".join((fields.get("place") or fields.get("home_place") or "").split())
    other = "".join(target.place.split())
    if place and other and (place in other or other in place):
        evidence.append("place")
        score += 0.15
    on = fields.get("event_date")
    if (
        on
        and target.on is not None
        and abs((date.fromisoformat(on) - target.on).days) <= DATE_SLACK_DAYS
    ):
        evidence.append("date")
        score += 0.15
    if not set(evidence) & {"age", "place", "date"}:
        return None
    return Hit(target, evidence, round(min(score, 1.0), 2), "agreeing: " + ", ".join(evidence))
