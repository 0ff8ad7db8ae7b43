"""Queries shared across handler modules."""

from __future__ import annotations

import functools
from collections import defaultdict
from typing import Any

from sqlalchemy import Insert, Table, insert
from sqlalchemy.orm import Session
from sqlmodel import SQLModel

from storage.prebuilt import Prebuilt


@functools.cache
def _insert(table: Table) -> Insert:
    return insert(table)  # one statement object per table, so its compiled form is found at once


@functools.cache
def _prebuilt_insert(table: Table) -> Prebuilt:
    return Prebuilt(_insert(table))


def insert_now(session: Session, *rows: SQLModel) -> None:
    """Insert new rows with Core, bypassing the ORM's unit of work (a flush costs several times the
    INSERT itself). For rows whose primary key is already set; the objects stay detached."""
    by_table: dict[Table, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        table: Table = row.__table__  # type: ignore[attr-defined]
        by_table[table].append({c.name: getattr(row, c.name) for c in table.columns})
    for table, values in by_table.items():
        _prebuilt_insert(table).execute(session, values)


def insert_one(session: Session, row: SQLModel) -> int:
    """Insert one new row with Core and return its primary key (for rows whose key the database
    assigns; on the hot path, where a flush of the ORM's unit of work costs several times the INSERT)."""
    table: Table = row.__table__  # type: ignore[attr-defined]
    values = {
        c.name: getattr(row, c.name)
        for c in table.columns
        if not (c.primary_key and getattr(row, c.name) is None)
    }
    key = session.connection().execute(_insert(table), values).inserted_primary_key
    assert key is not None
    return int(key[0])


def insert_rows(session: Session, model: type[SQLModel], rows: list[dict[str, Any]]) -> None:
    """Insert rows given as column values (cheaper still than `insert_now`: no objects are built)."""
    if rows:
        _prebuilt_insert(model.__table__).execute(session, rows)  # type: ignore[attr-defined]
