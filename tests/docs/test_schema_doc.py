"""docs/schema.md is the consumers' contract: it must name exactly the tables and columns the models have."""

from __future__ import annotations

import re
from pathlib import Path

from storage.models import Base

SCHEMA_DOC = Path(__file__).resolve().parents[2] / "docs" / "schema.md"
TABLE_HEADING = re.compile(r"^###\s+`(?P<table>\w+)`", re.MULTILINE)


def documented_columns() -> dict[str, set[str]]:
    """Table name -> column names from the first cell of each row of the table's column list."""
    text = SCHEMA_DOC.read_text(encoding="utf-8")
    result: dict[str, set[str]] = {}
    headings = list(TABLE_HEADING.finditer(text))
    for i, heading in enumerate(headings):
        section = text[heading.end() : headings[i + 1].start() if i + 1 < len(headings) else len(text)]
        columns: set[str] = set()
        in_columns = False
        for line in section.splitlines():
            if line.startswith("| column"):
                in_columns = True
                continue
            if in_columns and not line.startswith("|"):
                break
            if in_columns and not line.startswith("|---"):
                first_cell = line.split("|")[1]
                columns.update(re.findall(r"`(\w+)`", first_cell))
        result[heading["table"]] = columns
    return result


def test_every_table_and_column_is_documented_and_nothing_else() -> None:
    documented = documented_columns()
    actual = {name: {c.name for c in table.columns} for name, table in Base.metadata.tables.items()}
    assert sorted(documented) == sorted(actual)
    for name, columns in actual.items():
        assert documented[name] == columns, name


def test_every_index_and_unique_key_is_named_in_the_doc() -> None:
    text = SCHEMA_DOC.read_text(encoding="utf-8")
    for table in Base.metadata.tables.values():
        for index in table.indexes:
            assert index.name and index.name in text, f"index {index.name} of {table.name} is not documented"
        for constraint in table.constraints:
            kind = type(constraint).__name__
            if kind == "UniqueConstraint":
                assert constraint.name and constraint.name in text, f"{kind} {constraint.name} is not documented"
