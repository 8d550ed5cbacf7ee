"""The service catalogue as the city has it: 57 public service items by 11 departments, 20 marked."""

from __future__ import annotations

import importlib
import re

from gis.demo import catalogue


def test_fifty_seven_public_service_items_by_eleven_departments() -> None:
    """Check the 57 public service items and their 11 departments."""
    items = catalogue.service_items_frame()
    ps = items[items["category"] == "public_service"]
    assert len(ps) == 57
    assert ps["code"].tolist() == [f"PS-{i:03d}" for i in range(1, 58)]
    assert ps["department_code"].notna().all()
    assert set(ps["department_code"]) == set(catalogue.PUBLIC_SERVICE_DEPARTMENTS)
    assert len(catalogue.PUBLIC_SERVICE_DEPARTMENTS) == 11
    # the incident items (found or reported in the grids) are listed besides
    ev = items[items["category"] == "incident"]
    assert ev["code"].tolist() == [f"EV-{i:03d}" for i in range(1, 21)]
    departments = catalogue.departments_frame()
    assert departments["code"].is_unique
    assert set(items["department_code"].dropna()) <= set(departments["code"])


def test_the_twenty_high_frequency_items() -> None:
    """Check the 20 high-frequency items."""
    items = catalogue.service_items_frame().set_index("code")
    hf = items[items["high_frequency"]]
    assert len(hf) == 20 and (hf["category"] == "public_service").all()
    names = " ".join(hf["name_en"]).lower()
    for kind in ("insurance", "minimum living allowance", "work injury", "family", "disab", "difficulty"):
        assert kind in names, kind
    assert hf.loc["PS-004", "department_code"] == "civil_affairs"  # 低保


def test_names_in_chinese_and_english() -> None:
    """Check names in zh-CN and English, and the item weights."""
    items = catalogue.service_items_frame()
    assert items["name"].map(lambda s: bool(re.search(r"[\u4e00-\u9fff]", s))).all()
    assert items["name_en"].map(lambda s: bool(re.fullmatch(r"[A-Za-z0-9 ,.'()\-/&+]+", s))).all()
    assert items["name"].is_unique and items["name_en"].is_unique
    deps = catalogue.departments_frame()
    assert deps["name"].str.startswith("市").all() and deps["name_en"].str.len().gt(5).all()
    weights = catalogue.item_weights()
    assert set(weights) == set(items["code"]) and min(weights.values()) > 0


def test_the_migration_writes_the_same_catalogue() -> None:
    """Check that migration 0011_catalogue holds the same catalogue."""
    migration = importlib.import_module("migrations.versions.0011_catalogue")
    assert [tuple(d) for d in migration.DEPARTMENTS] == [tuple(d) for d in catalogue.DEPARTMENTS]
    assert [tuple(i) for i in migration.SERVICE_ITEMS] == [tuple(i[:9]) for i in catalogue.SERVICE_ITEMS]


def test_the_demo_publishes_the_items_the_publication_migration_does() -> None:
    """Check that the demo's public items are migration 0024_publication's."""
    migration = importlib.import_module("migrations.versions.0024_publication")
    assert set(migration.PUBLIC_ITEMS) == catalogue.PUBLIC_ITEMS
    frame = catalogue.service_items_frame()
    assert set(frame.loc[frame["public"], "code"]) == catalogue.PUBLIC_ITEMS
