"""The message catalogue is complete: every msgid and enum label has zh_CN text."""

from __future__ import annotations

from rescue.i18n import _, catalogue, label, negotiate, ngettext, plurals, use_locale
from rescue.i18n.enums import visible_enums
from rescue.i18n.extract import template


def test_every_message_has_zh_cn_text() -> None:
    zh = catalogue("zh_CN")
    zh_plurals, _rule = plurals("zh_CN")
    missing = sorted(
        f"{m.id!r} ({', '.join(f'{f}:{n}' for f, n in m.locations) or 'enum'})"
        for m in template()
        if m.id and (m.id not in zh_plurals if isinstance(m.id, tuple) else m.id not in zh)
    )
    assert not missing, "no zh_CN text (run `make messages`, then translate):\n" + "\n".join(
        missing
    )


def test_every_enum_value_has_a_label_in_each_locale() -> None:
    for locale in ("zh_CN", "en"):
        known = catalogue(locale)
        missing = [
            f"{enum.__name__}.{member.value}"
            for enum in visible_enums()
            for member in enum
            if f"{enum.__name__}.{member.value}" not in known
        ]
        assert not missing, f"{locale}: {missing}"


def test_labels_follow_the_active_locale() -> None:
    from rescue.cases.tables import CaseStatus

    with use_locale("zh_CN"):
        assert label(CaseStatus.stranded) == "滞留"
    with use_locale("en"):
        assert label(CaseStatus.stranded) == "stranded"


def test_unknown_msgid_is_shown_as_written_and_formatted() -> None:
    with use_locale("zh_CN"):
        assert _("no such text {n}", n=3) == "no such text 3"


def test_counts_take_the_plural_form_of_the_locale() -> None:
    """English: one announcement, 2 announcements; zh_CN has one form."""
    with use_locale("en"):
        assert ngettext("{n} announcement", "{n} announcements", 1) == "1 announcement"
        assert ngettext("{n} announcement", "{n} announcements", 0) == "0 announcements"
        assert ngettext("{n} announcement", "{n} announcements", 2) == "2 announcements"
    with use_locale("zh_CN"):
        assert ngettext("{n} announcement", "{n} announcements", 1) == "共 1 条公告"
        assert ngettext("{n} announcement", "{n} announcements", 5) == "共 5 条公告"
        # Not in the catalogue: the msgids by English's rule, formatted.
        assert ngettext("{n} cat of {who}", "{n} cats of {who}", 1, who="A") == "1 cat of A"


def test_negotiation_prefers_user_setting_then_quality_then_default() -> None:
    assert negotiate("en-US,en;q=0.9", preferred="zh_CN") == "zh_CN"
    assert negotiate("fr;q=1, en;q=0.5, zh-CN;q=0.8") == "zh_CN"
    assert negotiate("en-GB") == "en"
    assert negotiate("fr, de") == "zh_CN"  # DEFAULT_LOCALE
    assert negotiate(None) == "zh_CN"
    assert negotiate("zh-TW") == "zh_CN"  # the one Chinese catalogue
    assert negotiate("garbage;;q=x,,") == "zh_CN"


def test_a_candidates_face_explanation_is_in_the_readers_language() -> None:
    """The case page's 依据 column (CandidateOut.explanation) is built at read time."""
    from rescue.matching.ledger import _explain

    with use_locale("zh_CN"):
        assert _explain(0.346, 0.53) == (
            "最接近的两张人脸相距 0.346（欧氏距离，dlib 128 维）；阈值 0.53，余量 +0.184"
        )
    with use_locale("en"):
        assert _explain(0.346, 0.53).startswith("closest faces are 0.346 apart")
