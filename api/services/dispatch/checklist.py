"""The 30 grid-visit checklist items (网格走访清单, "30 grid-visit checklist items").

A grid worker ticks the items checked on a household visit. The list follows the
domain brief: living conditions and health of vulnerable residents ("three
must-visits, four must-helps"), safety hazards that end up as cases for housing,
urban management or police (gas, flying-wire e-bike charging, elevators,
stairwell clutter, dog keeping), and the high-frequency public service items a
worker can start at the door (pension certification, insurance, dibao, disability
subsidies). The codes are the ones the demo city records (``gis/demo``).
"""

from __future__ import annotations

from typing import NamedTuple


class ChecklistItem(NamedTuple):
    """One item of the grid-visit checklist (code, label)."""

    code: str
    name: str
    name_en: str
    group: str


VISIT_CHECKLIST: tuple[ChecklistItem, ...] = (
    # --- people: living, health and care (三必访、四必帮)
    ChecklistItem("living_conditions", "居住生活状况", "Living conditions", "care"),
    ChecklistItem("health_status", "身体健康状况", "Health status", "care"),
    ChecklistItem("income_support", "收入与生活来源", "Income and means of support", "care"),
    ChecklistItem("medication", "用药与就医情况", "Medication and medical visits", "care"),
    ChecklistItem("meals", "吃饭（助餐）情况", "Meals (meal assistance)", "care"),
    ChecklistItem("mental_state", "精神心理状态", "Mental state", "care"),
    ChecklistItem("family_contact", "子女亲属联系情况", "Contact with family", "care"),
    ChecklistItem("emergency_contact", "紧急联系人登记", "Emergency contact on file", "care"),
    ChecklistItem("assistive_devices", "辅具使用与需求", "Assistive devices", "care"),
    ChecklistItem("home_care_service", "居家养老服务需求", "Home-based care services", "care"),
    ChecklistItem("hygiene", "室内卫生状况", "Hygiene at home", "care"),
    # --- safety hazards (cases for housing, urban management, police)
    ChecklistItem("home_safety", "居家安全隐患", "Home safety hazards", "safety"),
    ChecklistItem("gas_safety", "燃气使用安全", "Gas safety", "safety"),
    ChecklistItem("electric_safety", "用电安全", "Electrical safety", "safety"),
    ChecklistItem("fire_extinguisher", "消防器材配备", "Fire extinguisher", "safety"),
    ChecklistItem("e_bike_charging", "电动车飞线充电", "E-bike flying-wire charging", "safety"),
    ChecklistItem("stairwell_clutter", "楼道堆物", "Stairwell clutter", "safety"),
    ChecklistItem("elevator", "电梯运行安全", "Elevator safety", "safety"),
    ChecklistItem("water_leak", "漏水渗水", "Water leaks and seepage", "safety"),
    ChecklistItem("illegal_construction", "违章搭建", "Illegal construction", "safety"),
    ChecklistItem("fraud_warning", "防诈骗宣传", "Anti-fraud warning given", "safety"),
    # --- neighbourhood
    ChecklistItem(
        "neighbour_relations", "邻里关系与矛盾纠纷", "Neighbour relations and disputes", "community"
    ),
    ChecklistItem("dog_keeping", "文明养犬", "Civilised dog keeping", "community"),
    # --- public service items started at the door
    ChecklistItem("policy_awareness", "惠民政策知晓", "Awareness of benefit policies", "services"),
    ChecklistItem("pension_certification", "养老金资格认证", "Pension eligibility certification", "services"),
    ChecklistItem("medical_insurance", "医保参保缴费", "Medical insurance enrolment", "services"),
    ChecklistItem("disability_subsidy", "残疾人补贴", "Disability subsidies", "services"),
    ChecklistItem("dibao_review", "低保动态复核", "Minimum living allowance review", "services"),
    ChecklistItem("employment", "就业与失业登记", "Employment and unemployment registration", "services"),
    ChecklistItem("children_school", "适龄儿童入学", "School-age children in school", "services"),
)

CHECKLIST_CODES: frozenset[str] = frozenset(item.code for item in VISIT_CHECKLIST)

assert len(VISIT_CHECKLIST) == 30 and len(CHECKLIST_CODES) == 30


def unknown_items(codes: list[str]) -> list[str]:
    """List the codes that are not on the checklist (in the order given)."""
    return [c for c in codes if c not in CHECKLIST_CODES]
