"""A small school database the offline generator has never been tuned on.

Its schema and rows are written for these tests (none of the shared question sets
uses them): departments, teachers, courses, students, enrollments (a bridge between
students and courses), clubs and memberships (a bridge between students and clubs).
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from avl.assistant import Assistant

SCHOOL_DDL = """
CREATE TABLE departments (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  building TEXT NOT NULL,
  budget REAL NOT NULL
);
CREATE TABLE teachers (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  department_id INTEGER NOT NULL REFERENCES departments(id),
  hire_year INTEGER NOT NULL,
  salary REAL NOT NULL
);
CREATE TABLE courses (
  id INTEGER PRIMARY KEY,
  title TEXT NOT NULL,
  department_id INTEGER NOT NULL REFERENCES departments(id),
  teacher_id INTEGER REFERENCES teachers(id),
  credits INTEGER NOT NULL
);
CREATE TABLE students (
  id INTEGER PRIMARY KEY,
  first_name TEXT NOT NULL,
  last_name TEXT NOT NULL,
  city TEXT NOT NULL,
  birth_year INTEGER NOT NULL,
  gpa REAL NOT NULL,
  is_active TEXT NOT NULL
);
CREATE TABLE enrollments (
  student_id INTEGER NOT NULL REFERENCES students(id),
  course_id INTEGER NOT NULL REFERENCES courses(id),
  grade TEXT NOT NULL,
  score REAL NOT NULL,
  PRIMARY KEY (student_id, course_id)
);
CREATE TABLE clubs (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  founded_year INTEGER NOT NULL
);
CREATE TABLE memberships (
  student_id INTEGER NOT NULL REFERENCES students(id),
  club_id INTEGER NOT NULL REFERENCES clubs(id),
  PRIMARY KEY (student_id, club_id)
);
"""

_DEPARTMENTS = [
    (1, "Physics", "North Hall", 120000.0),
    (2, "History", "Old Library", 80000.0),
    (3, "Mathematics", "North Hall", 95000.0),
    (4, "Music", "Arts Centre", 60000.0),
]
_TEACHERS = [
    (1, "Marie Okafor", 1, 2009, 71000.0),
    (2, "Tomas Lindqvist", 1, 2015, 64000.0),
    (3, "Priya Raman", 2, 2001, 82000.0),
    (4, "Hugo Bernard", 3, 2018, 59000.0),
    (5, "Lena Novak", 3, 2012, 67000.0),
    (6, "Samuel Mensah", 4, 2020, 52000.0),
]
_COURSES = [
    (1, "Mechanics", 1, 1, 5),
    (2, "Optics", 1, 2, 3),
    (3, "Ancient Rome", 2, 3, 4),
    (4, "Linear Algebra", 3, 4, 5),
    (5, "Number Theory", 3, 5, 3),
    (6, "Harmony", 4, 6, 2),
    (7, "Modern Europe", 2, 3, 3),
]
_STUDENTS = [
    (1, "Aiko", "Tanaka", "Boston", 2003, 3.8, "Y"),
    (2, "Bruno", "Costa", "Denver", 2002, 2.9, "Y"),
    (3, "Chloe", "Martin", "Boston", 2004, 3.4, "N"),
    (4, "Dmitri", "Ivanov", "Austin", 2001, 3.1, "Y"),
    (5, "Esther", "Cohen", "Denver", 2003, 3.9, "Y"),
    (6, "Farid", "Haddad", "Austin", 2002, 2.5, "N"),
    (7, "Greta", "Larsen", "Boston", 2005, 3.6, "Y"),
    (8, "Hamid", "Karimi", "Seattle", 2004, 3.0, "Y"),
]
_ENROLLMENTS = [
    (1, 1, "A", 93.0),
    (1, 4, "A", 95.0),
    (1, 5, "B", 86.0),
    (2, 3, "C", 72.0),
    (2, 7, "B", 81.0),
    (3, 2, "B", 84.0),
    (3, 6, "A", 90.0),
    (4, 1, "C", 70.0),
    (4, 4, "B", 80.0),
    (5, 4, "A", 97.0),
    (5, 5, "A", 94.0),
    (5, 3, "A", 91.0),
    (7, 6, "B", 83.0),
    (8, 2, "C", 75.0),
]
_CLUBS = [(1, "Chess", 1998), (2, "Drama", 2005), (3, "Robotics", 2016)]
_MEMBERSHIPS = [(1, 1), (1, 3), (2, 2), (4, 1), (5, 3), (7, 2), (8, 3)]


def build_school(path: Path) -> Path:
    """Create the school database at ``path``."""
    conn = sqlite3.connect(path)
    try:
        conn.executescript(SCHOOL_DDL)
        conn.executemany("INSERT INTO departments VALUES (?, ?, ?, ?)", _DEPARTMENTS)
        conn.executemany("INSERT INTO teachers VALUES (?, ?, ?, ?, ?)", _TEACHERS)
        conn.executemany("INSERT INTO courses VALUES (?, ?, ?, ?, ?)", _COURSES)
        conn.executemany("INSERT INTO students VALUES (?, ?, ?, ?, ?, ?, ?)", _STUDENTS)
        conn.executemany("INSERT INTO enrollments VALUES (?, ?, ?, ?)", _ENROLLMENTS)
        conn.executemany("INSERT INTO clubs VALUES (?, ?, ?)", _CLUBS)
        conn.executemany("INSERT INTO memberships VALUES (?, ?)", _MEMBERSHIPS)
        conn.commit()
    finally:
        conn.close()
    return path


@pytest.fixture(scope="module")
def school_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The school database file."""
    return build_school(tmp_path_factory.mktemp("school") / "school.db")


@pytest.fixture(scope="module")
def school(school_db: Path) -> Iterator[Assistant]:
    """An Assistant over the school database with its default (offline) model."""
    a = Assistant(db=f"sqlite:///{school_db}", cache_threshold=None)
    a.train_from_database()
    yield a
    a.close()


def rows_of(db: Path, sql: str) -> collections.Counter[tuple[Any, ...]]:
    """The rows of ``sql`` on ``db`` as a multiset."""
    conn = sqlite3.connect(db)
    try:
        return collections.Counter(tuple(r) for r in conn.execute(sql).fetchall())
    finally:
        conn.close()
