"""Tests of grid planning: redraw, edits, versions, review, compare, publish, imports, CLI."""
