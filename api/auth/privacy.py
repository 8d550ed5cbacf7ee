"""Residents' privacy: who sees which personal field, and how the rest is masked.

The policy is data (:data:`POLICY`): for each role and each *relation* of the
caller to the record, the personal field kinds shown in full. Everything else
is masked (:data:`MASKERS`): phone ``138****5678``, name ``张*``, ID number
``3****************X``; health and hardship flags are hidden (``None``).

One function does it for every output — routers, maps, exports, Open311 and
logs: :func:`mask_person`. Pass the record (a dict), the caller (a
``Principal`` or ``None`` for anonymous/public output/logs) and what relates
the record to places and people (its community, grid worker, assignee,
department, reporting token). Unknown keys are left alone; the keys that hold
personal fields are listed in :data:`FIELD_KINDS` (extend it rather than
masking by hand).

Free text (a case's description as Open311 publishes it) is masked by
:func:`mask_text`: known names, ID numbers, phone numbers and names recognised by
their context.

Staff contact details (a grid worker's name and phone on the locate answer)
are public by design (一格一员 boards show them); only residents' and
reporters' personal fields are protected here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from api.auth.principal import Principal

# --------------------------------------------------------------------------- field kinds

NAME = "name"
PHONE = "phone"
ID_NUMBER = "id_number"
FLAGS = "flags"  # health / disability / hardship markers
KINDS = (NAME, PHONE, ID_NUMBER, FLAGS)

#: Record keys holding personal fields, and their kind.
FIELD_KINDS: dict[str, str] = {
    "name": NAME,
    "resident_name": NAME,
    "reporter_name": NAME,
    "contact_name": NAME,
    "first_name": NAME,
    "last_name": NAME,
    "phone": PHONE,
    "resident_phone": PHONE,
    "reporter_phone": PHONE,
    "contact_phone": PHONE,
    "email": PHONE,
    "id_number": ID_NUMBER,
    "id_card": ID_NUMBER,
    "flags": FLAGS,
    "health": FLAGS,
    "hardship": FLAGS,
    "disability": FLAGS,
    "resident_flags": FLAGS,
}

# --------------------------------------------------------------------------- relations

#: The caller is responsible for the record's place or person (own grid, own
#: task, own department's case, the report it filed).
OWN = "own"
#: The record lies in the caller's area scope (community/district).
IN_SCOPE = "in_scope"
#: Anything else (out of scope, anonymous, logs, public output).
OTHER = "other"

ALL = frozenset(KINDS)

#: role → relation → kinds shown in full. Absent → masked. Admin sees all.
POLICY: dict[str, dict[str, frozenset[str]]] = {
    "admin": {OWN: ALL, IN_SCOPE: ALL, OTHER: ALL},
    # dispatchers/window staff call residents back and route help to the vulnerable
    "dispatcher": {OWN: frozenset({NAME, PHONE, FLAGS}), IN_SCOPE: frozenset({NAME, PHONE, FLAGS})},
    # grid workers visit their own households (must-visits need the flags)
    "worker": {OWN: frozenset({NAME, PHONE, FLAGS})},
    # a department handling its escalated case needs to contact the resident
    "department": {OWN: frozenset({NAME, PHONE})},
    # a reporter sees what it filed itself
    "reporter": {OWN: frozenset({NAME, PHONE})},
    # planners count households; they never need who lives there
    "planner": {},
}


def relation(
    principal: Principal | None,
    *,
    community_code: str | None = None,
    persons: Iterable[int | None] = (),
    department_code: str | None = None,
    reporter_token_id: int | None = None,
) -> str:
    """How the caller relates to a record (OWN, IN_SCOPE or OTHER)."""
    if principal is None:
        return OTHER
    if principal.role == "reporter":
        own = reporter_token_id is not None and reporter_token_id == principal.token_id
        return OWN if own else OTHER
    if principal.role == "worker" and principal.person_id is not None:
        return OWN if principal.person_id in set(persons) else OTHER
    if principal.role == "department" and principal.department_code is not None:
        return OWN if department_code == principal.department_code else OTHER
    if community_code is not None and principal.in_scope(community_code):
        has_area = principal.community_code or principal.district_code
        # a worker/department token scoped to an area owns what lies in it
        if principal.role in ("worker", "department") and has_area:
            return OWN
        return IN_SCOPE
    return OTHER


def visible_kinds(principal: Principal | None, rel: str) -> frozenset[str]:
    """Return the personal field kinds a caller sees in full for a relation."""
    if principal is None:
        return frozenset()
    return POLICY.get(principal.role, {}).get(rel, frozenset())


# --------------------------------------------------------------------------- maskers


def mask_phone(value: str | None) -> str | None:
    """``13812345678`` → ``138****5678`` (keeps 3 + 4 digits of 11; fewer when short)."""
    if value is None:
        return None
    s = str(value)
    if len(s) >= 11:
        return s[:3] + "*" * (len(s) - 7) + s[-4:]
    if len(s) >= 7:
        return s[:2] + "*" * (len(s) - 4) + s[-2:]
    return "*" * len(s)


def mask_name(value: str | None) -> str | None:
    """``张三`` → ``张*``, ``欧阳娜娜`` → ``欧***``, ``Li Lei`` → ``L*****``."""
    if value is None:
        return None
    s = str(value)
    return s[:1] + "*" * max(1, len(s) - 1) if s else s


def mask_id_number(value: str | None) -> str | None:
    """Mask an ID number, keeping its first and last character: ``3****************X``."""
    if value is None:
        return None
    s = str(value)
    return s[:1] + "*" * (len(s) - 2) + s[-1:] if len(s) > 2 else "*" * len(s)


def hide(value: Any) -> None:
    """Hide a value entirely (health and hardship flags)."""
    return None


MASKERS = {NAME: mask_name, PHONE: mask_phone, ID_NUMBER: mask_id_number, FLAGS: hide}


def mask_value(kind: str, value: Any) -> Any:
    """Mask one value of a personal field kind (for logs, exports without a caller)."""
    return MASKERS[kind](value)


# --------------------------------------------------------------------------- the function


def mask_person(
    record: Mapping[str, Any],
    principal: Principal | None,
    *,
    community_code: str | None = None,
    persons: Iterable[int | None] = (),
    department_code: str | None = None,
    reporter_token_id: int | None = None,
    fields: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Copy ``record`` with the personal fields the caller may not see masked.

    Parameters
    ----------
    record
        A flat dict (a row, a GeoJSON feature's ``properties``, an Open311 request).
    principal
        The caller; ``None`` for anonymous callers, public output and logs
        (everything masked).
    community_code, persons, department_code, reporter_token_id
        What relates the record to the caller: its community, the people
        responsible for it (grid worker, assignee) or who it is, the department
        handling it, the token that reported it. Missing values are read from
        the record itself (keys of the same names, plus ``grid_worker_id``,
        ``assignee_id``, ``worker_id``).
    fields
        Extra ``key → kind`` pairs for keys not in :data:`FIELD_KINDS`.
    """
    kinds = {**FIELD_KINDS, **(fields or {})}
    if community_code is None:
        community_code = record.get("community_code")
    people = list(persons) or [record.get(k) for k in ("assignee_id", "grid_worker_id", "worker_id")]
    if department_code is None:
        department_code = record.get("department_code")
    if reporter_token_id is None:
        reporter_token_id = record.get("reporter_token_id")
    rel = relation(
        principal,
        community_code=community_code,
        persons=[p for p in people if p is not None],
        department_code=department_code,
        reporter_token_id=reporter_token_id,
    )
    shown = visible_kinds(principal, rel)
    out = dict(record)
    for key, kind in kinds.items():
        if key in out and kind not in shown:
            out[key] = MASKERS[kind](out[key])
    return out


def mask_people(
    records: Iterable[Mapping[str, Any]], principal: Principal | None, **context: Any
) -> list[dict[str, Any]]:
    """:func:`mask_person` over many records (context per record is read from each)."""
    return [mask_person(r, principal, **context) for r in records]


def mask_for_log(record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Mask every personal field (logs, audit before/after, anonymous exports)."""
    if record is None:
        return None
    return mask_person(record, None)


# --------------------------------------------------------------------------- free text

#: 18-digit resident ID numbers (the last may be X), and the old 15-digit ones.
ID_NUMBER_RE = re.compile(r"(?<![0-9A-Za-z])(?:\d{17}[0-9Xx]|\d{15})(?![0-9A-Za-z])")
#: Mobile numbers (optionally +86), written whole or as 3-4-4 with spaces or dashes.
MOBILE_RE = re.compile(r"(?<![0-9])(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}(?![0-9])")
#: Landlines with an area code: 0555-1234567, (0555) 1234567, 0555 12345678.
LANDLINE_RE = re.compile(r"(?<![0-9])(?:\(0\d{2,3}\)|0\d{2,3})[\s-]?\d{7,8}(?![0-9])")
#: Any other run of seven or more digits (a phone number written oddly, an account number).
DIGITS_RE = re.compile(r"(?<![0-9])\d{7,}(?![0-9])")

#: Compound Chinese surnames.
COMPOUND_SURNAMES = ("欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "令狐", "慕容", "司徒", "夏侯", "尉迟")
#: Common single-character surnames. Characters that in a report mostly mean something
#: else (方 side, 高 high, 路 road, 于 at, 向 towards, 区 district ...) are left out.
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余杜叶程魏苏吕"
    "丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦傅付邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱"
    "严覃武戴莫孔汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申耿关兰焦俞左柳甘祝包宁"
    "尚符舒阮柯纪梅童凌毕季裴霍涂苗谷盛翁冉骆蓝"
)
#: Words after which a person's name follows (居民张三, 联系人：李四).
_BEFORE = (
    "居民 业主 住户 户主 租户 房东 老人 邻居 家属 本人 当事人 联系人 报告人 举报人 反映人 申请人 姓名 我叫"
)
NAME_BEFORE = (*_BEFORE.split(), "名叫", "我是")
#: Words after a name that mark it as one (张三先生, 王小明阿姨).
_AFTER_WORDS = "先生 女士 小姐 阿姨 大爷 大妈 大叔 大姐 大哥 奶奶 爷爷 师傅 老师 同学 阿婆 老人 家属 一家"
NAME_AFTER = tuple(_AFTER_WORDS.split())
#: Characters that end a name written after a :data:`NAME_BEFORE` word (the next word starts).
_STOP = "说讲称反映家的在和与及等要被把让到了电手打住楼门栋号室也都已将向对从给是于今昨前"
_HAN = "\u4e00-\u9fff"
_AFTER = "|".join(NAME_AFTER)
_SURNAME = "(?:" + "|".join(COMPOUND_SURNAMES) + f"|[{SURNAMES}])"
_GIVEN = f"(?!{_AFTER})[{_HAN}](?:(?![{_STOP}])(?!{_AFTER})[{_HAN}])?"
#: A name after a marker word (group ``pre`` keeps the marker) or before an honorific.
NAME_RE = re.compile(
    f"(?P<pre>(?:{'|'.join(NAME_BEFORE)})[:：\\s]*)(?P<a>{_SURNAME}{_GIVEN})"
    f"|(?P<b>{_SURNAME}[{_HAN}]{{1,2}})(?=(?:{_AFTER}))"
)


def _known_names(names: Iterable[str | None]) -> list[str]:
    """List the spellings of known names to look for: whole, unspaced, parts of 2+ characters."""
    found: set[str] = set()
    for name in names:
        if not name or not name.strip():
            continue
        whole = name.strip()
        found.update({whole, "".join(whole.split())})
        found.update(part for part in whole.split() if len(part) >= 2)
    return sorted((n for n in found if len(n) >= 2), key=len, reverse=True)


def mask_text(text: str | None, names: Iterable[str | None] = ()) -> str | None:
    """Mask the personal details written into free text (a case's description).

    Masked, in this order: the ``names`` given (e.g. the case's reporters, however
    spaced), ID numbers (18 digits, the last may be ``X``, or 15 digits) as
    :func:`mask_id_number`, mobile and landline numbers as :func:`mask_phone`, any
    other run of seven or more digits, and names recognised by their context — a
    surname after words such as 居民、业主、联系人、姓名 or before 先生、女士、阿姨、师傅
    — as :func:`mask_name` (``张*``). A surname alone (张先生) is what a masked name
    shows anyway and stays.

    Parameters
    ----------
    text
        The free text (None stays None).
    names
        Names known to belong to the record (its reporters' names).

    Returns
    -------
    str or None
        The text with those details masked.
    """
    if text is None:
        return None
    out = str(text)
    for name in _known_names(names):
        out = out.replace(name, mask_name(name) or "")
    out = ID_NUMBER_RE.sub(lambda m: mask_id_number(m.group(0)) or "", out)
    for pattern in (MOBILE_RE, LANDLINE_RE):
        out = pattern.sub(lambda m: _mask_digits(m.group(0)), out)
    out = DIGITS_RE.sub(lambda m: mask_phone(m.group(0)) or "", out)

    def masked(m: re.Match[str]) -> str:
        if m.group("a") is not None:
            return m.group("pre") + (mask_name(m.group("a")) or "")
        return mask_name(m.group("b")) or ""

    return NAME_RE.sub(masked, out)


def _mask_digits(value: str) -> str:
    """Mask a phone number written with separators: its digits as :func:`mask_phone`, no separators."""
    digits = re.sub(r"\D", "", value)
    if len(digits) == 13 and digits.startswith("86"):
        return "+86 " + (mask_phone(digits[2:]) or "")
    return mask_phone(digits) or ""
