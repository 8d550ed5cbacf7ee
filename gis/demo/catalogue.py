"""Departments and the service catalogue (清单之外无事项).

``category`` is the kind of item: ``public_service`` (公共服务事项, codes ``PS-``),
handled at the community window, many of them on the spot; or ``incident``
(事件, codes ``EV-``), a matter found or reported in a grid and handled in the
field, escalated to the owning department when the community cannot solve it.
"""

from __future__ import annotations

import pandas as pd

# code, name, name_en, time limit (hours) for a case escalated to the department
DEPARTMENTS: list[tuple[str, str, str, int]] = [
    ("housing", "市住房和城乡建设局", "Housing and Urban-Rural Development Bureau", 72),
    ("urban_management", "市城市管理局", "Urban Management Bureau", 48),
    ("police", "市公安局", "Public Security Bureau", 24),
    ("civil_affairs", "市民政局", "Civil Affairs Bureau", 120),
    ("health", "市卫生健康委员会", "Health Commission", 72),
    ("hrss", "市人力资源和社会保障局", "Human Resources and Social Security Bureau", 120),
    ("disabled_federation", "市残疾人联合会", "Disabled Persons' Federation", 120),
    ("medical_security", "市医疗保障局", "Medical Security Bureau", 120),
    ("market_regulation", "市市场监督管理局", "Market Regulation Administration", 72),
    ("ecology_environment", "市生态环境局", "Ecology and Environment Bureau", 72),
    ("water", "市水务局", "Water Affairs Bureau", 48),
]

# code, name, name_en, category, department, time limit h, on the spot, high frequency,
# description, relative weight of the item among the year's cases
_PS = "public_service"
_EV = "incident"
SERVICE_ITEMS: list[tuple[str, str, str, str, str | None, int, bool, bool, str, float]] = [
    # --- the 20 high-frequency public service items (paperwork -60%, time limits -40%)
    ("PS-001", "城乡居民基本养老保险参保登记", "Residents' basic pension insurance enrolment", _PS,
     "hrss", 24, True, True, "参保登记、信息变更，窗口即办", 6.0),
    ("PS-002", "城乡居民基本医疗保险参保缴费", "Residents' basic medical insurance enrolment and payment",
     _PS, "medical_security", 24, True, True, "参保登记与缴费，窗口即办", 8.0),
    ("PS-003", "养老保险待遇资格认证", "Pension eligibility certification", _PS, "hrss", 24, True, True,
     "领取养老金人员年度资格认证（可上门认证）", 6.0),
    ("PS-004", "最低生活保障申请（低保）", "Minimum living allowance (dibao) application", _PS,
     "civil_affairs", 216, False, True, "受理低保申请、入户调查、公示后报民政部门审批", 3.0),
    ("PS-005", "特困人员救助供养申请", "Support for persons in extreme poverty", _PS, "civil_affairs",
     216, False, True, "受理特困供养申请并报审", 0.8),
    ("PS-006", "临时救助申请", "Temporary assistance application", _PS, "civil_affairs", 72, False, True,
     "困难家庭临时救助受理", 1.5),
    ("PS-007", "困难家庭关爱帮扶", "Care for families in difficulty", _PS, "civil_affairs", 72, False,
     True, "困难家庭走访帮扶、需求登记与转介", 1.5),
    ("PS-008", "工伤认定申请受理", "Work injury recognition application", _PS, "hrss", 216, False, True,
     "工伤认定材料收取与转报", 0.8),
    ("PS-009", "失业登记", "Unemployment registration", _PS, "hrss", 24, True, True,
     "失业登记、就业困难人员认定初审", 2.5),
    ("PS-010", "就业创业证办理", "Employment and entrepreneurship certificate", _PS, "hrss", 24, True,
     True, "就业创业证申领，窗口即办", 2.0),
    ("PS-011", "生育登记服务", "Birth registration (family planning)", _PS, "health", 24, True, True,
     "一孩、二孩、三孩生育登记，窗口即办", 3.0),
    ("PS-012", "计划生育家庭特别扶助", "Special support for family-planning families", _PS, "health", 144,
     False, True, "独生子女伤残死亡家庭扶助申请", 0.6),
    ("PS-013", "独生子女父母奖励", "One-child parents' reward", _PS, "health", 24, True, True,
     "独生子女父母奖励金申请", 1.5),
    ("PS-014", "残疾人证办理（新办、换领）", "Disability certificate (new or renewal)", _PS,
     "disabled_federation", 144, False, True, "受理残疾人证申请，行动不便者可上门代办", 1.2),
    ("PS-015", "困难残疾人生活补贴", "Living subsidy for disabled persons in difficulty", _PS,
     "disabled_federation", 144, False, True, "困难残疾人生活补贴申请", 1.0),
    ("PS-016", "重度残疾人护理补贴", "Care subsidy for severely disabled persons", _PS,
     "disabled_federation", 144, False, True, "重度残疾人护理补贴申请", 0.9),
    ("PS-017", "高龄津贴申领", "Old-age allowance (80+)", _PS, "civil_affairs", 24, True, True,
     "80周岁以上老年人高龄津贴申领", 2.5),
    ("PS-018", "居住证办理", "Residence permit", _PS, "police", 24, True, True,
     "居住登记与居住证申领受理", 3.0),
    ("PS-019", "居家养老服务申请", "Home-based elderly care services", _PS, "civil_affairs", 72, False,
     True, "助餐、助浴、助医等居家养老服务申请", 1.2),
    ("PS-020", "医疗救助申请", "Medical assistance application", _PS, "medical_security", 144, False,
     True, "困难群众医疗救助申请受理", 0.8),
    # --- other public service items
    ("PS-021", "老年人优待证办理", "Senior citizen concession card", _PS, "civil_affairs", 24, True,
     False, "60周岁以上老年人优待证", 1.5),
    ("PS-022", "退役军人优待证申领", "Veterans' preferential card", _PS, "civil_affairs", 72, False, False,
     "退役军人优待证受理", 0.4),
    ("PS-023", "居民身份证办理预约", "ID card appointment", _PS, "police", 24, True, False,
     "身份证办理预约与材料预审", 1.0),
    ("PS-024", "社区居住证明开具", "Community residence certificate", _PS, None, 24, True, False,
     "为居民开具居住情况证明", 2.0),
    ("PS-025", "灵活就业人员社保登记", "Social insurance for flexible workers", _PS, "hrss", 24, True,
     False, "灵活就业人员参保登记", 1.2),
    ("PS-026", "老年人能力评估申请", "Elderly capability assessment", _PS, "civil_affairs", 144, False,
     False, "失能老人能力评估申请", 0.5),
    ("PS-027", "门诊慢特病待遇申请", "Chronic disease outpatient benefit", _PS, "medical_security", 144,
     False, False, "慢特病认定申请受理", 0.9),
    ("PS-028", "食品经营许可咨询", "Food business licence guidance", _PS, "market_regulation", 72, False,
     False, "小餐饮、食杂店许可咨询与材料预审", 0.3),
    # --- incidents found in the grids (事件)
    ("EV-001", "房屋漏水渗水", "Water leak or seepage between flats", _EV, "housing", 240, False, False,
     "楼上漏水渗水，需排查漏点并协调业主、物业", 4.0),
    ("EV-002", "公共设施损坏（健身器材等）", "Broken public facility (fitness equipment etc.)", _EV,
     "urban_management", 336, False, False, "小区或广场健身器材、座椅、路灯等损坏", 3.0),
    ("EV-003", "电动车飞线充电", "Flying-wire e-bike charging", _EV, "housing", 48, False, False,
     "楼道私拉电线给电动车充电，存在火灾隐患", 3.5),
    ("EV-004", "电梯安全隐患", "Elevator safety hazard", _EV, "housing", 24, False, False,
     "电梯困人、异响、年检过期", 1.5),
    ("EV-005", "小区停车乱象", "Estate parking disorder", _EV, "housing", 72, False, False,
     "占用消防通道、乱停乱放", 3.0),
    ("EV-006", "小区环境脏乱差", "Dirty or messy estate", _EV, "urban_management", 72, False, False,
     "垃圾堆积、清运不及时、卫生死角", 4.0),
    ("EV-007", "不文明养犬", "Uncivil dog keeping", _EV, "police", 48, False, False,
     "遛狗不拴绳、犬只扰民伤人", 2.0),
    ("EV-008", "邻里纠纷", "Neighbour dispute", _EV, None, 168, False, False,
     "噪音、漏水、占道等引起的邻里矛盾调解", 3.0),
    ("EV-009", "违章搭建", "Illegal construction", _EV, "urban_management", 168, False, False,
     "楼顶、院落私搭乱建", 1.5),
    ("EV-010", "占道经营", "Street vending on the roadway", _EV, "urban_management", 48, False, False,
     "流动摊贩占道经营", 2.0),
    ("EV-011", "噪音扰民", "Noise nuisance", _EV, "ecology_environment", 48, False, False,
     "装修、商铺、广场舞噪音", 2.0),
    ("EV-012", "供水管网漏水", "Public water main leak", _EV, "water", 24, False, False,
     "道路或小区供水管道破裂", 1.2),
    ("EV-013", "下水道堵塞", "Blocked sewer", _EV, "water", 48, False, False,
     "下水道堵塞、污水外溢", 2.0),
    ("EV-014", "楼道堆物", "Clutter in stairwells", _EV, None, 72, False, False,
     "楼道堆放杂物占用消防通道", 2.5),
    ("EV-015", "高空抛物", "Objects thrown from height", _EV, "police", 48, False, False,
     "高空抛物、坠物隐患", 0.6),
    ("EV-016", "路灯不亮", "Street light out", _EV, "urban_management", 72, False, False,
     "道路或小区路灯损坏", 1.5),
    ("EV-017", "物业服务纠纷", "Property management dispute", _EV, "housing", 168, False, False,
     "物业收费、服务质量纠纷", 1.5),
    ("EV-018", "食品安全投诉", "Food safety complaint", _EV, "market_regulation", 72, False, False,
     "小餐饮卫生、过期食品", 0.6),
    ("EV-019", "独居老人异常情况", "Elderly person living alone in trouble", _EV, "civil_affairs", 24,
     False, False, "独居老人多日未出门、身体不适等", 0.8),
    ("EV-020", "燃气安全隐患", "Gas safety hazard", _EV, "housing", 24, False, False,
     "燃气泄漏气味、软管老化", 0.8),
]

#: The rewards that points buy. The migration ``0003_dispatch`` seeds this catalogue into the
#: ``rewards`` table (the demo does not load it); a test keeps the two lists equal.
#: code, name, name_en, points, provider
REWARDS: list[tuple[str, str, str, int, str]] = [
    ("haircut", "社区爱心理发一次", "Community haircut", 50, "社区志愿服务站"),
    ("appliance_repair", "小家电维修一次", "Small appliance repair", 80, "社区便民服务点"),
    ("canteen_meal", "社区食堂午餐券", "Community canteen lunch voucher", 30, "社区长者食堂"),
    ("health_check", "基础健康体检一次", "Basic health check-up", 200, "社区卫生服务中心"),
    ("housekeeping_2h", "家政保洁服务2小时", "Housekeeping, 2 hours", 150, "合作家政公司"),
    ("bus_card_topup", "公交卡充值20元", "Bus card top-up, 20 yuan", 100, "市公交公司"),
    ("library_pass", "图书馆借阅季卡", "Library pass, one quarter", 60, "市图书馆"),
    ("e_bike_safety_check", "电动车安全检测一次", "E-bike safety check", 40, "社区便民服务点"),
    ("tailoring", "缝补服务一次", "Mending and tailoring", 20, "社区志愿服务站"),
    ("legal_consult", "法律咨询一次", "Legal consultation", 120, "社区法律顾问"),
]

#: The 30 grid-visit checklist items (网格走访清单), as codes.
VISIT_CHECKLIST = [
    "living_conditions", "health_status", "income_support", "medication", "meals",
    "home_safety", "gas_safety", "electric_safety", "fire_extinguisher", "e_bike_charging",
    "stairwell_clutter", "elevator", "water_leak", "neighbour_relations", "family_contact",
    "mental_state", "policy_awareness", "pension_certification", "medical_insurance",
    "disability_subsidy", "dibao_review", "employment", "children_school", "fraud_warning",
    "emergency_contact", "assistive_devices", "home_care_service", "hygiene",
    "illegal_construction", "dog_keeping",
]


def departments_frame() -> pd.DataFrame:
    return pd.DataFrame(DEPARTMENTS, columns=["code", "name", "name_en", "time_limit_hours"])


def service_items_frame() -> pd.DataFrame:
    cols = ["code", "name", "name_en", "category", "department_code", "time_limit_hours",
            "on_the_spot", "high_frequency", "description"]
    return pd.DataFrame([row[:9] for row in SERVICE_ITEMS], columns=cols)


def item_weights() -> dict[str, float]:
    return {row[0]: row[9] for row in SERVICE_ITEMS}
