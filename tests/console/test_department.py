"""The department queue in a real browser: a case escalated through the API reaches the
department's open page live, which accepts it, replies, and closes it with a note; a
second case is returned with its reasons (and refused without them). Database checked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from selenium.webdriver.common.by import By

from tests.console.conftest import Page, Server

SQL = Callable[..., list[tuple[Any, ...]]]


def _assigned_cases(sql: SQL, n: int) -> list[int]:
    rows = sql(
        "SELECT id FROM incidents WHERE status IN ('assigned', 'accepted', 'in_progress') "
        "AND duplicate_of IS NULL AND department_code IS NULL ORDER BY id LIMIT %s",
        (n,),
    )
    assert len(rows) == n, "the test city has open assigned cases"
    return [r[0] for r in rows]


def _escalate(server: Server, token: str, incident_id: int, department: str) -> None:
    r = httpx.post(
        f"{server.url}/api/v1/incidents/{incident_id}/transitions",
        json={"action": "escalate", "department": department, "note": "飞线充电，请住建部门处理"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "escalated"


def _department(sql: SQL) -> str:
    return sql("SELECT code FROM departments ORDER BY code LIMIT 1")[0][0]


def _act(page: Page, incident_id: int, action: str, note: str | None = None) -> None:
    page.wait(
        lambda d: d.find_elements(By.CSS_SELECTOR, f'#dept-case article[data-incident-id="{incident_id}"]')
    )
    if note is not None:
        box = page.css("#dept-case textarea[name=note]")
        box.clear()
        box.send_keys(note)
    page.css(f'#dept-case button[name=action][value="{action}"]').click()


def test_escalated_case_reaches_the_department_live_accept_reply_close(
    page: Page, tokens: dict[str, str], sql: SQL, console_server: Server
) -> None:
    department = _department(sql)
    (case,) = _assigned_cases(sql, 1)
    page.sign_in(tokens["department"])
    assert page.driver.current_url.endswith("/console/department")
    page.wait(lambda d: d.find_element(By.ID, "wg-live").get_attribute("data-state") == "open")
    assert not page.all(f'.dept-row[data-incident-id="{case}"]')
    # the community blows the whistle (API): the open page shows the case without a reload
    _escalate(console_server, tokens["dispatcher"], case, department)
    row = page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, f'.dept-row[data-incident-id="{case}"]'), 10)[
        0
    ]
    assert row.get_attribute("data-status") == "escalated"
    due = row.find_element(By.CSS_SELECTOR, "[data-due]")
    page.wait(lambda d: "剩余" in due.text or "超时" in due.text)  # the clock counts
    row.find_element(By.CSS_SELECTOR, "a").click()
    # accept (报到)
    _act(page, case, "accept")
    page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, '#dept-case [data-done="accept"]'))
    assert sql("SELECT status FROM incidents WHERE id = %s", (case,)) == [("department_accepted",)]
    # reply (反馈): a note in the log, the status stays
    _act(page, case, "reply", "已到现场核实，已通知物业拆除飞线")
    page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, '#dept-case [data-done="reply"]'))
    assert sql("SELECT status FROM incidents WHERE id = %s", (case,)) == [("department_accepted",)]
    replies = sql(
        "SELECT detail->>'note', detail->>'department' FROM incident_events "
        "WHERE incident_id = %s AND action = 'reply'",
        (case,),
    )
    assert replies == [("已到现场核实，已通知物业拆除飞线", department)]
    assert (
        page.css('#dept-case .dept-log li[data-action="reply"] q').text == "已到现场核实，已通知物业拆除飞线"
    )
    page.shot("department-queue")
    # close with a note (办结 = resolve): the community verifies and closes afterwards
    _act(page, case, "close", "飞线已拆除，充电桩已安装")
    page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, '#dept-case [data-done="close"]'))
    status, resolved = sql("SELECT status, resolved_at IS NOT NULL FROM incidents WHERE id = %s", (case,))[0]
    assert (status, resolved) == ("resolved", True)
    note = sql(
        "SELECT detail->>'note' FROM incident_events WHERE incident_id = %s AND action = 'resolve'", (case,)
    )
    assert note == [("飞线已拆除，充电桩已安装",)]
    # it leaves the queue (live refresh)
    page.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, f'.dept-row[data-incident-id="{case}"]'), 10)
    page.assert_clean()


def test_department_returns_a_case_with_its_reasons(
    page: Page, tokens: dict[str, str], sql: SQL, console_server: Server
) -> None:
    department = _department(sql)
    (case,) = _assigned_cases(sql, 1)
    _escalate(console_server, tokens["dispatcher"], case, department)
    page.sign_in(tokens["department"])
    page.open(f"/console/department/{case}")
    assert page.css(f'.dept-row[data-incident-id="{case}"]').get_attribute("data-status") == "escalated"
    # without the reasons: refused, nothing changes
    _act(page, case, "return", "")
    error = page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#dept-case .dept-error"))[0]
    assert error.get_attribute("data-error") == "body.note"
    assert sql("SELECT status, department_code FROM incidents WHERE id = %s", (case,)) == [
        ("escalated", department)
    ]
    _act(page, case, "return", "不属于本部门职责，请转城管")
    page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, '#dept-case [data-done="return"]'))
    assert sql("SELECT status, department_code FROM incidents WHERE id = %s", (case,)) == [("assigned", None)]
    events = sql(
        "SELECT detail->>'note', detail->>'department' FROM incident_events "
        "WHERE incident_id = %s AND action = 'return'",
        (case,),
    )
    assert events == [("不属于本部门职责，请转城管", department)]
    page.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, f'.dept-row[data-incident-id="{case}"]'), 10)
    page.assert_clean(expected=("422",))


def test_another_department_gets_404_and_no_change(
    console_server: Server, tokens: dict[str, str], sql: SQL, make_token: Callable[..., str]
) -> None:
    department = _department(sql)
    other = sql("SELECT code FROM departments WHERE code <> %s ORDER BY code LIMIT 1", (department,))[0][0]
    (case,) = _assigned_cases(sql, 1)
    _escalate(console_server, tokens["dispatcher"], case, department)
    stranger = make_token("department", department_code=other)
    headers = {"Authorization": f"Bearer {stranger}"}
    got = httpx.get(f"{console_server.url}/console/department/{case}", headers=headers)
    assert got.status_code == 404
    done = httpx.post(
        f"{console_server.url}/console/department/{case}/act",
        data={"action": "reply", "note": "不是我们的", "key": "stranger-1"},
        headers=headers,
    )
    assert done.status_code == 404
    assert sql(
        "SELECT count(*) FROM incident_events WHERE incident_id = %s AND action = 'reply'", (case,)
    ) == [(0,)]


def test_a_retried_action_is_done_once(
    page: Page, tokens: dict[str, str], sql: SQL, console_server: Server
) -> None:
    """The panel's key: a double click and a resend answer the same case and write nothing twice."""
    department = _department(sql)
    (case,) = _assigned_cases(sql, 1)
    _escalate(console_server, tokens["dispatcher"], case, department)
    page.sign_in(tokens["department"])
    page.open(f"/console/department/{case}")
    page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#dept-case form.dept-act input[name=key]"))
    # the form exactly as the page sends it (its key, its CSRF field), several times over
    answers = page.driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const form = document.querySelector('#dept-case form.dept-act');
        const send = (action, note) => {
          const body = new URLSearchParams(new FormData(form));
          body.set('action', action);
          if (note) body.set('note', note);
          return fetch(form.getAttribute('hx-post'), {method: 'POST', body, headers: {'HX-Request': 'true'}})
            .then((r) => [action, r.status, r.headers.get('Idempotent-Replayed')]);
        };
        (async () => {
          const out = [];
          out.push(...await Promise.all([send('accept'), send('accept')]));  // a double click
          out.push(await send('accept'));  // a resend after the answer was lost
          out.push(...await Promise.all([send('reply', '已派人核查'), send('reply', '已派人核查')]));
          out.push(await send('reply', '已派人核查'));
          out.push(await send('close'));  // refused (no note): the key is not spent
          out.push(await send('close', '已处理完毕'));
          out.push(await send('close', '已处理完毕'));
          done(out);
        })();
        """
    )
    by_action: dict[str, list[tuple[int, str | None]]] = {}
    for action, status, replayed in answers:
        by_action.setdefault(action, []).append((status, replayed))
    for action in ("accept", "reply"):
        got = sorted(by_action[action], key=lambda a: (a[0], a[1] or ""))
        assert got == [(200, None), (200, "true"), (200, "true")], answers
    assert by_action["close"] == [(422, None), (200, None), (200, "true")], answers
    counts = sql(
        "SELECT action, count(*) FROM incident_events WHERE incident_id = %s "
        "AND action IN ('department_accept', 'reply', 'resolve') GROUP BY action ORDER BY action",
        (case,),
    )
    assert counts == [("department_accept", 1), ("reply", 1), ("resolve", 1)], counts
    assert sql("SELECT status FROM incidents WHERE id = %s", (case,)) == [("resolved",)]
    page.assert_clean(expected=("422",))
