"""STATION_NAMES and PUBLIC_BASE_URL: parsed, or refused naming what is accepted."""

from __future__ import annotations

import pytest

from rescue.settings import SettingsError, StationInfo, load_settings


def test_station_names_and_public_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "STATION_NAMES",
        '{"north": {"name": "北区救助管理站", "contact": "110"}, "south": "南区站"}',
    )
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://xunqin.example.gov.cn/")
    site = load_settings().site
    assert site.public_base_url == "https://xunqin.example.gov.cn"
    assert site.station("north") == StationInfo(name="北区救助管理站", contact="110")
    assert site.station("south").name == "南区站"
    assert site.station("east") == StationInfo(name="east", named=False)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STATION_NAMES", "north=北区"),
        ("STATION_NAMES", '{"north": {"contact": "110"}}'),
        ("PUBLIC_BASE_URL", "xunqin.example.gov.cn"),
    ],
)
def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()
