"""catalogue: the service catalogue as the city has it (清单之外无事项)

The departments and the items cases are filed under are the city's own list,
not demo data: every store needs them before its first case. This revision
writes them (and brings an older store's list up to date): the 57 public
service items written by 11 departments, the 20 high-frequency ones marked
(``service_items.high_frequency``), and the 20 kinds of incident found or
reported in the grids, each with its department for escalation. The demo
(``gis.demo.catalogue``) ships the same list; a test keeps the two equal.

Revision ID: 0011_catalogue
Revises: 0010_trust
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_catalogue"
down_revision: str | Sequence[str] | None = "0010_trust"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: code, name, name_en, time limit (hours) of a case escalated to the department
DEPARTMENTS = [
    ('housing', '市住房和城乡建设局', 'Housing and Urban-Rural Development Bureau', 72),
    ('urban_management', '市城市管理局', 'Urban Management Bureau', 48),
    ('police', '市公安局', 'Public Security Bureau', 24),
    ('civil_affairs', '市民政局', 'Civil Affairs Bureau', 120),
    ('health', '市卫生健康委员会', 'Health Commission', 72),
    ('hrss', '市人力资源和社会保障局', 'Human Resources and Social Security Bureau', 120),
    ('disabled_federation', '市残疾人联合会', "Disabled Persons' Federation", 120),
    ('medical_security', '市医疗保障局', 'Medical Security Bureau', 120),
    ('market_regulation', '市市场监督管理局', 'Market Regulation Administration', 72),
    ('ecology_environment', '市生态环境局', 'Ecology and Environment Bureau', 72),
    ('water', '市水务局', 'Water Affairs Bureau', 48),
    ('veterans_affairs', '市退役军人事务局', 'Veterans Affairs Bureau', 120),
    ('justice', '市司法局', 'Justice Bureau', 72),
    ('education', '市教育局', 'Education Bureau', 120),
]

#: code, name, name_en, category, department, time limit (h), on the spot, high frequency, description
SERVICE_ITEMS = [
    ('PS-001', '城乡居民基本养老保险参保登记', "Residents' basic pension insurance enrolment", 'public_service', 'hrss', 24, True, True, '参保登记、信息变更，窗口即办'),
    ('PS-002', '城乡居民基本医疗保险参保缴费', "Residents' basic medical insurance enrolment and payment", 'public_service', 'medical_security', 24, True, True, '参保登记与缴费，窗口即办'),
    ('PS-003', '养老保险待遇资格认证', 'Pension eligibility certification', 'public_service', 'hrss', 24, True, True, '领取养老金人员年度资格认证（可上门认证）'),
    ('PS-004', '最低生活保障申请（低保）', 'Minimum living allowance (dibao) application', 'public_service', 'civil_affairs', 216, False, True, '受理低保申请、入户调查、公示后报民政部门审批'),
    ('PS-005', '特困人员救助供养申请', 'Support for persons in extreme poverty', 'public_service', 'civil_affairs', 216, False, True, '受理特困供养申请并报审'),
    ('PS-006', '临时救助申请', 'Temporary assistance application', 'public_service', 'civil_affairs', 72, False, True, '困难家庭临时救助受理'),
    ('PS-007', '困难家庭关爱帮扶', 'Care for families in difficulty', 'public_service', 'civil_affairs', 72, False, True, '困难家庭走访帮扶、需求登记与转介'),
    ('PS-008', '工伤认定申请受理', 'Work injury recognition application', 'public_service', 'hrss', 216, False, True, '工伤认定材料收取与转报'),
    ('PS-009', '失业登记', 'Unemployment registration', 'public_service', 'hrss', 24, True, True, '失业登记、就业困难人员认定初审'),
    ('PS-010', '就业创业证办理', 'Employment and entrepreneurship certificate', 'public_service', 'hrss', 24, True, True, '就业创业证申领，窗口即办'),
    ('PS-011', '生育登记服务', 'Birth registration (family planning)', 'public_service', 'health', 24, True, True, '一孩、二孩、三孩生育登记，窗口即办'),
    ('PS-012', '计划生育家庭特别扶助', 'Special support for family-planning families', 'public_service', 'health', 144, False, True, '独生子女伤残死亡家庭扶助申请'),
    ('PS-013', '独生子女父母奖励', "One-child parents' reward", 'public_service', 'health', 24, True, True, '独生子女父母奖励金申请'),
    ('PS-014', '残疾人证办理（新办、换领）', 'Disability certificate (new or renewal)', 'public_service', 'disabled_federation', 144, False, True, '受理残疾人证申请，行动不便者可上门代办'),
    ('PS-015', '困难残疾人生活补贴', 'Living subsidy for disabled persons in difficulty', 'public_service', 'disabled_federation', 144, False, True, '困难残疾人生活补贴申请'),
    ('PS-016', '重度残疾人护理补贴', 'Care subsidy for severely disabled persons', 'public_service', 'disabled_federation', 144, False, True, '重度残疾人护理补贴申请'),
    ('PS-017', '高龄津贴申领', 'Old-age allowance (80+)', 'public_service', 'civil_affairs', 24, True, True, '80周岁以上老年人高龄津贴申领'),
    ('PS-018', '居住证办理', 'Residence permit', 'public_service', 'police', 24, True, True, '居住登记与居住证申领受理'),
    ('PS-019', '居家养老服务申请', 'Home-based elderly care services', 'public_service', 'civil_affairs', 72, False, True, '助餐、助浴、助医等居家养老服务申请'),
    ('PS-020', '医疗救助申请', 'Medical assistance application', 'public_service', 'medical_security', 144, False, True, '困难群众医疗救助申请受理'),
    ('PS-021', '老年人优待证办理', 'Senior citizen concession card', 'public_service', 'civil_affairs', 24, True, False, '60周岁以上老年人优待证'),
    ('PS-022', '退役军人优待证申领', "Veterans' preferential card", 'public_service', 'veterans_affairs', 72, False, False, '退役军人优待证受理'),
    ('PS-023', '居民身份证办理预约', 'ID card appointment', 'public_service', 'police', 24, True, False, '身份证办理预约与材料预审'),
    ('PS-024', '社区居住证明开具', 'Community residence certificate', 'public_service', 'civil_affairs', 24, True, False, '为居民开具居住情况证明'),
    ('PS-025', '灵活就业人员社保登记', 'Social insurance for flexible workers', 'public_service', 'hrss', 24, True, False, '灵活就业人员参保登记'),
    ('PS-026', '老年人能力评估申请', 'Elderly capability assessment', 'public_service', 'civil_affairs', 144, False, False, '失能老人能力评估申请'),
    ('PS-027', '门诊慢特病待遇申请', 'Chronic disease outpatient benefit', 'public_service', 'medical_security', 144, False, False, '慢特病认定申请受理'),
    ('PS-028', '食品经营许可咨询', 'Food business licence guidance', 'public_service', 'market_regulation', 72, False, False, '小餐饮、食杂店许可咨询与材料预审'),
    ('PS-029', '社会保障卡申领', 'Social security card application', 'public_service', 'hrss', 24, True, False, '社保卡申领、补换，窗口即办'),
    ('PS-030', '城乡居民养老保险待遇申领', "Residents' pension benefit claim", 'public_service', 'hrss', 120, False, False, '达到领取年龄人员待遇申领与核定'),
    ('PS-031', '就业困难人员认定', 'Recognition of persons with employment difficulties', 'public_service', 'hrss', 120, False, False, '就业困难人员认定申请受理与公示'),
    ('PS-032', '职业技能培训报名', 'Vocational training enrolment', 'public_service', 'hrss', 24, True, False, '补贴性职业技能培训报名登记'),
    ('PS-033', '基本医疗保险关系转移接续', 'Medical insurance transfer', 'public_service', 'medical_security', 72, False, False, '跨统筹区医保关系转移接续申请'),
    ('PS-034', '异地就医备案', 'Registration for medical treatment elsewhere', 'public_service', 'medical_security', 24, True, False, '异地安置、长期居住人员就医备案'),
    ('PS-035', '困境儿童基本生活保障', 'Basic living support for children in difficulty', 'public_service', 'civil_affairs', 216, False, False, '困境儿童认定申请、入户核查与报审'),
    ('PS-036', '经济困难老年人养老服务补贴', 'Elderly care subsidy for low-income elderly', 'public_service', 'civil_affairs', 144, False, False, '经济困难高龄、失能老人服务补贴申请'),
    ('PS-037', '老年助餐服务登记', 'Elderly meal service registration', 'public_service', 'civil_affairs', 24, True, False, '社区长者食堂助餐登记，窗口即办'),
    ('PS-038', '殡葬惠民补助申请', 'Funeral subsidy application', 'public_service', 'civil_affairs', 72, False, False, '基本殡葬服务费用减免补助申请'),
    ('PS-039', '家庭医生签约服务', 'Family doctor contract', 'public_service', 'health', 24, True, False, '家庭医生签约登记与转介'),
    ('PS-040', '预防接种证办理', 'Vaccination certificate', 'public_service', 'health', 24, True, False, '儿童预防接种证办理与补证'),
    ('PS-041', '母子健康手册办理', 'Mother and child health handbook', 'public_service', 'health', 24, True, False, '孕产妇建册登记'),
    ('PS-042', '残疾人辅助器具适配申请', 'Assistive devices for disabled persons', 'public_service', 'disabled_federation', 144, False, False, '轮椅、助听器等辅具适配申请'),
    ('PS-043', '残疾儿童康复救助申请', 'Rehabilitation assistance for disabled children', 'public_service', 'disabled_federation', 216, False, False, '0-6岁残疾儿童康复救助申请'),
    ('PS-044', '户籍证明开具', 'Household registration certificate', 'public_service', 'police', 72, False, False, '户籍证明材料收取，转派出所出具'),
    ('PS-045', '出生登记（户口申报）', 'Birth household registration', 'public_service', 'police', 72, False, False, '新生儿户口申报材料预审与转办'),
    ('PS-046', '公共租赁住房申请', 'Public rental housing application', 'public_service', 'housing', 216, False, False, '公租房申请受理、入户核查与公示'),
    ('PS-047', '住房租赁补贴申请', 'Housing rental subsidy application', 'public_service', 'housing', 216, False, False, '低收入家庭租赁补贴申请与年审'),
    ('PS-048', '既有住宅加装电梯申请', 'Elevator retrofit for an existing block', 'public_service', 'housing', 336, False, False, '老旧小区加装电梯意见征询与申报'),
    ('PS-049', '优抚对象抚恤补助', 'Pensions and subsidies for entitled groups', 'public_service', 'veterans_affairs', 144, False, False, '重点优抚对象抚恤补助申请与资格审核'),
    ('PS-050', '退役军人就业创业服务', 'Employment services for veterans', 'public_service', 'veterans_affairs', 72, False, False, '退役军人就业创业需求登记与推荐'),
    ('PS-051', '退役军人信息采集', "Veterans' information registration", 'public_service', 'veterans_affairs', 24, True, False, '退役军人及其他优抚对象信息采集，窗口即办'),
    ('PS-052', '法律援助申请', 'Legal aid application', 'public_service', 'justice', 72, False, False, '法律援助申请受理与转交法援中心'),
    ('PS-053', '人民调解申请', "People's mediation application", 'public_service', 'justice', 168, False, False, '矛盾纠纷人民调解申请受理'),
    ('PS-054', '学生资助申请', 'Student financial aid application', 'public_service', 'education', 144, False, False, '家庭经济困难学生资助申请与证明'),
    ('PS-055', '适龄儿童入学信息登记', 'School enrolment registration', 'public_service', 'education', 72, False, False, '义务教育入学信息登记、居住证明核验'),
    ('PS-056', '个体工商户登记咨询', 'Individual business registration guidance', 'public_service', 'market_regulation', 24, True, False, '个体工商户登记指导与材料预审，窗口即办'),
    ('PS-057', '无犯罪记录证明申请', 'Certificate of no criminal record', 'public_service', 'police', 72, False, False, '无犯罪记录证明材料收取与转办'),
    ('EV-001', '房屋漏水渗水', 'Water leak or seepage between flats', 'incident', 'housing', 240, False, False, '楼上漏水渗水，需排查漏点并协调业主、物业'),
    ('EV-002', '公共设施损坏（健身器材等）', 'Broken public facility (fitness equipment etc.)', 'incident', 'urban_management', 336, False, False, '小区或广场健身器材、座椅、路灯等损坏'),
    ('EV-003', '电动车飞线充电', 'Flying-wire e-bike charging', 'incident', 'housing', 48, False, False, '楼道私拉电线给电动车充电，存在火灾隐患'),
    ('EV-004', '电梯安全隐患', 'Elevator safety hazard', 'incident', 'housing', 24, False, False, '电梯困人、异响、年检过期'),
    ('EV-005', '小区停车乱象', 'Estate parking disorder', 'incident', 'housing', 72, False, False, '占用消防通道、乱停乱放'),
    ('EV-006', '小区环境脏乱差', 'Dirty or messy estate', 'incident', 'urban_management', 72, False, False, '垃圾堆积、清运不及时、卫生死角'),
    ('EV-007', '不文明养犬', 'Uncivil dog keeping', 'incident', 'police', 48, False, False, '遛狗不拴绳、犬只扰民伤人'),
    ('EV-008', '邻里纠纷', 'Neighbour dispute', 'incident', None, 168, False, False, '噪音、漏水、占道等引起的邻里矛盾调解'),
    ('EV-009', '违章搭建', 'Illegal construction', 'incident', 'urban_management', 168, False, False, '楼顶、院落私搭乱建'),
    ('EV-010', '占道经营', 'Street vending on the roadway', 'incident', 'urban_management', 48, False, False, '流动摊贩占道经营'),
    ('EV-011', '噪音扰民', 'Noise nuisance', 'incident', 'ecology_environment', 48, False, False, '装修、商铺、广场舞噪音'),
    ('EV-012', '供水管网漏水', 'Public water main leak', 'incident', 'water', 24, False, False, '道路或小区供水管道破裂'),
    ('EV-013', '下水道堵塞', 'Blocked sewer', 'incident', 'water', 48, False, False, '下水道堵塞、污水外溢'),
    ('EV-014', '楼道堆物', 'Clutter in stairwells', 'incident', None, 72, False, False, '楼道堆放杂物占用消防通道'),
    ('EV-015', '高空抛物', 'Objects thrown from height', 'incident', 'police', 48, False, False, '高空抛物、坠物隐患'),
    ('EV-016', '路灯不亮', 'Street light out', 'incident', 'urban_management', 72, False, False, '道路或小区路灯损坏'),
    ('EV-017', '物业服务纠纷', 'Property management dispute', 'incident', 'housing', 168, False, False, '物业收费、服务质量纠纷'),
    ('EV-018', '食品安全投诉', 'Food safety complaint', 'incident', 'market_regulation', 72, False, False, '小餐饮卫生、过期食品'),
    ('EV-019', '独居老人异常情况', 'Elderly person living alone in trouble', 'incident', 'civil_affairs', 24, False, False, '独居老人多日未出门、身体不适等'),
    ('EV-020', '燃气安全隐患', 'Gas safety hazard', 'incident', 'housing', 24, False, False, '燃气泄漏气味、软管老化'),
]


def upgrade() -> None:
    conn = op.get_bind()
    conn.execute(
        sa.text(
            "INSERT INTO departments (code, name, name_en, time_limit_hours) "
            "VALUES (:code, :name, :name_en, :hours) ON CONFLICT (code) DO UPDATE SET "
            "name = EXCLUDED.name, name_en = EXCLUDED.name_en, time_limit_hours = EXCLUDED.time_limit_hours"
        ),
        [{"code": c, "name": n, "name_en": e, "hours": h} for c, n, e, h in DEPARTMENTS],
    )
    conn.execute(
        sa.text(
            "INSERT INTO service_items (code, name, name_en, category, department_code, time_limit_hours, "
            "on_the_spot, high_frequency, description) VALUES (:code, :name, :name_en, :category, :dept, "
            ":hours, :spot, :hf, :description) ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, "
            "name_en = EXCLUDED.name_en, category = EXCLUDED.category, "
            "department_code = EXCLUDED.department_code, time_limit_hours = EXCLUDED.time_limit_hours, "
            "on_the_spot = EXCLUDED.on_the_spot, high_frequency = EXCLUDED.high_frequency, "
            "description = EXCLUDED.description"
        ),
        [
            {
                "code": c,
                "name": n,
                "name_en": e,
                "category": cat,
                "dept": d,
                "hours": h,
                "spot": spot,
                "hf": hf,
                "description": desc,
            }
            for c, n, e, cat, d, h, spot, hf, desc in SERVICE_ITEMS
        ],
    )


def downgrade() -> None:
    # The catalogue is data the cases refer to: it stays (earlier revisions accept it as it is).
    pass
