"""docs/security.md carries the permission table generated from the code."""

from __future__ import annotations

from api.auth.docs import DOC, render


def test_security_doc_permission_table_matches_the_code() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert render(text) == text, "docs/security.md is stale: run `python -m api.auth.docs`"
