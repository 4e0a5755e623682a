"""Each intent step on a schema the generator was never tuned on: the rows of the
composed SQL equal the rows of the SQL a person would write."""

from __future__ import annotations

from pathlib import Path

import pytest

from avl.assistant import Assistant
from tests.offline.conftest import rows_of

CASES = [
    # selection and plain filters
    ("List the names of all teachers.", "SELECT name FROM teachers"),
    (
        "Which students live in Boston?",
        "SELECT first_name, last_name FROM students WHERE city = 'Boston'",
    ),
    ("Show the titles of courses worth 5 credits.", "SELECT title FROM courses WHERE credits = 5"),
    (
        "What are the first names of students not from Denver?",
        "SELECT first_name FROM students WHERE city != 'Denver'",
    ),
    ("Which teachers were hired after 2010?", "SELECT name FROM teachers WHERE hire_year > 2010"),
    (
        "Which teachers were hired before 2005 or after 2015?",
        "SELECT name FROM teachers WHERE hire_year < 2005 OR hire_year > 2015",
    ),
    (
        "List the students born between 2002 and 2003.",
        "SELECT first_name, last_name FROM students WHERE birth_year BETWEEN 2002 AND 2003",
    ),
    (
        "Which students are active?",
        "SELECT first_name, last_name FROM students WHERE is_active = 'Y'",
    ),
    (
        "Show the courses whose title contains 'Theory'.",
        "SELECT title FROM courses WHERE title LIKE '%Theory%'",
    ),
    # counting
    ("How many students are there?", "SELECT COUNT(*) FROM students"),
    (
        "Count the departments in North Hall.",
        "SELECT COUNT(*) FROM departments WHERE building = 'North Hall'",
    ),
    (
        "How many different cities do students come from?",
        "SELECT COUNT(DISTINCT city) FROM students",
    ),
    # aggregates
    ("What is the average salary of teachers?", "SELECT AVG(salary) FROM teachers"),
    ("What is the total budget of all departments?", "SELECT SUM(budget) FROM departments"),
    ("What are the highest and lowest gpa of students?", "SELECT MAX(gpa), MIN(gpa) FROM students"),
    ("What is the maximum score in enrollments?", "SELECT MAX(score) FROM enrollments"),
    # grouping
    ("How many students live in each city?", "SELECT city, COUNT(*) FROM students GROUP BY city"),
    (
        "What is the average salary per department?",
        "SELECT T1.name, AVG(T2.salary) FROM departments AS T1 JOIN teachers AS T2 ON T1.id = T2.department_id GROUP BY T1.id",
    ),
    (
        "How many courses does each department offer?",
        "SELECT T1.name, COUNT(*) FROM departments AS T1 JOIN courses AS T2 ON T1.id = T2.department_id GROUP BY T1.id",
    ),
    (
        "Which cities have at least 2 students?",
        "SELECT city FROM students GROUP BY city HAVING COUNT(*) >= 2",
    ),
    (
        "Which students are enrolled in more than two courses?",
        "SELECT T1.first_name, T1.last_name FROM students AS T1 JOIN enrollments AS T2 ON T1.id = T2.student_id GROUP BY T1.id HAVING COUNT(*) > 2",
    ),
    # ranking over aggregates
    (
        "Which city has the most students?",
        "SELECT city FROM students GROUP BY city ORDER BY COUNT(*) DESC LIMIT 1",
    ),
    (
        "Which department has the most teachers?",
        "SELECT T1.name FROM departments AS T1 JOIN teachers AS T2 ON T1.id = T2.department_id GROUP BY T1.id ORDER BY COUNT(*) DESC LIMIT 1",
    ),
    (
        "Which department has the highest average teacher salary?",
        "SELECT T1.name FROM departments AS T1 JOIN teachers AS T2 ON T1.id = T2.department_id GROUP BY T1.id ORDER BY AVG(T2.salary) DESC LIMIT 1",
    ),
    (
        "Which student has the fewest enrollments?",
        "SELECT T1.first_name, T1.last_name FROM students AS T1 JOIN enrollments AS T2 ON T1.id = T2.student_id GROUP BY T1.id ORDER BY COUNT(*) ASC LIMIT 1",
    ),
    (
        "What is the most common grade?",
        "SELECT grade FROM enrollments GROUP BY grade ORDER BY COUNT(*) DESC LIMIT 1",
    ),
    # ranking rows
    (
        "Who is the teacher with the highest salary?",
        "SELECT name FROM teachers ORDER BY salary DESC LIMIT 1",
    ),
    (
        "Show the top 3 students by gpa.",
        "SELECT first_name, last_name FROM students ORDER BY gpa DESC LIMIT 3",
    ),
    (
        "List the three cheapest departments by budget.",
        "SELECT name FROM departments ORDER BY budget ASC LIMIT 3",
    ),
    (
        "Who is the youngest student?",
        "SELECT first_name, last_name FROM students ORDER BY birth_year DESC LIMIT 1",
    ),
    (
        "Which teacher was hired most recently?",
        "SELECT name FROM teachers ORDER BY hire_year DESC LIMIT 1",
    ),
    # ordering
    (
        "List the courses ordered by credits descending.",
        "SELECT title FROM courses ORDER BY credits DESC",
    ),
    ("Show the clubs sorted alphabetically.", "SELECT name FROM clubs ORDER BY name"),
    # joins, bridges, negation
    (
        "What are the titles of the courses taught by Priya Raman?",
        "SELECT T1.title FROM courses AS T1 JOIN teachers AS T2 ON T1.teacher_id = T2.id WHERE T2.name = 'Priya Raman'",
    ),
    (
        "Which courses does Aiko take?",
        "SELECT T3.title FROM students AS T1 JOIN enrollments AS T2 ON T1.id = T2.student_id JOIN courses AS T3 ON T2.course_id = T3.id WHERE T1.first_name = 'Aiko'",
    ),
    (
        "Which clubs do students from Austin belong to?",
        "SELECT T3.name FROM students AS T1 JOIN memberships AS T2 ON T1.id = T2.student_id JOIN clubs AS T3 ON T2.club_id = T3.id WHERE T1.city = 'Austin'",
    ),
    (
        "Which students take both Mechanics and Linear Algebra?",
        "SELECT T1.first_name, T1.last_name FROM students AS T1 JOIN enrollments AS T2 "
        "ON T1.id = T2.student_id JOIN courses AS T3 ON T2.course_id = T3.id "
        "WHERE T3.title = 'Mechanics' INTERSECT SELECT T1.first_name, T1.last_name "
        "FROM students AS T1 JOIN enrollments AS T2 ON T1.id = T2.student_id "
        "JOIN courses AS T3 ON T2.course_id = T3.id WHERE T3.title = 'Linear Algebra'",
    ),
    (
        "Which students live in Boston or Denver?",
        "SELECT first_name, last_name FROM students WHERE city IN ('Boston', 'Denver')",
    ),
    (
        "Which students are not in any club?",
        "SELECT first_name, last_name FROM students WHERE id NOT IN (SELECT student_id FROM memberships)",
    ),
    (
        "Which teachers teach no course?",
        "SELECT name FROM teachers WHERE id NOT IN (SELECT teacher_id FROM courses WHERE teacher_id IS NOT NULL)",
    ),
    (
        "How many students got an A in Mechanics?",
        "SELECT COUNT(*) FROM enrollments AS T1 JOIN courses AS T2 ON T1.course_id = T2.id WHERE T1.grade = 'A' AND T2.title = 'Mechanics'",
    ),
    (
        "What is the average score of students from Denver?",
        "SELECT AVG(T2.score) FROM students AS T1 JOIN enrollments AS T2 ON T1.id = T2.student_id WHERE T1.city = 'Denver'",
    ),
    (
        "Which students have a gpa above the average?",
        "SELECT first_name, last_name FROM students WHERE gpa > (SELECT AVG(gpa) FROM students)",
    ),
]


@pytest.mark.parametrize(("question", "gold"), CASES)
def test_composed_rows_equal_the_gold_rows(
    school: Assistant, school_db: Path, question: str, gold: str
) -> None:
    ans = school.ask(question)
    assert ans.error == "", (question, ans.sql, ans.error)
    assert rows_of(school_db, ans.sql) == rows_of(school_db, gold), (question, ans.sql)


def test_both_tables_intersect_the_column_they_share() -> None:
    from avl.llm.offline import ColumnSpec, GenerationContext, OfflineChatModel, TableSpec

    people = [ColumnSpec(name="id", type="INT", primary_key=True), ColumnSpec(name="city")]
    ctx = GenerationContext(
        question="Which cities have both customers and suppliers?",
        tables=[
            TableSpec(name="customers", columns=people),
            TableSpec(name="suppliers", columns=people),
        ],
    )
    assert OfflineChatModel().write(ctx).sql == (
        "SELECT city FROM customers INTERSECT SELECT city FROM suppliers"
    )
