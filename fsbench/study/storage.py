"""Study storage in SQLite (WAL): studies, raters, assignments, answers.

Every answer is written when it is given, in its own transaction, so a rater who closes the page loses nothing;
WAL lets the organiser's report read while raters write, and ``busy_timeout`` makes concurrent writers wait for
each other instead of failing. One connection per ``Storage``; Streamlit opens one per script run.

For the pick design an answer row is the chosen method (value 1) and a question has at most one row per unit;
for the score design there is one row per question and method, value = the score. ``position`` is where the
result was shown (0 = first, "A"), kept so that position bias can be checked.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from fsbench.results import now
from fsbench.study.design import SCORE_MAX, SCORE_MIN, Study, StudyError, normalise_code

SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
    id TEXT PRIMARY KEY, design TEXT NOT NULL, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS raters (
    id INTEGER PRIMARY KEY, study TEXT NOT NULL REFERENCES studies(id), code TEXT NOT NULL,
    seed INTEGER NOT NULL, created TEXT NOT NULL, UNIQUE (study, code));
CREATE TABLE IF NOT EXISTS assignments (
    rater INTEGER NOT NULL REFERENCES raters(id), position INTEGER NOT NULL, unit TEXT NOT NULL,
    result_order TEXT NOT NULL, done TEXT, PRIMARY KEY (rater, position), UNIQUE (rater, unit));
CREATE TABLE IF NOT EXISTS answers (
    rater INTEGER NOT NULL, unit TEXT NOT NULL, question TEXT NOT NULL, method TEXT NOT NULL,
    value REAL NOT NULL, position INTEGER NOT NULL, answered TEXT NOT NULL,
    PRIMARY KEY (rater, unit, question, method), FOREIGN KEY (rater, unit) REFERENCES assignments(rater, unit));
"""


@dataclass(frozen=True)
class Rater:
    id: int
    code: str
    seed: int


@dataclass(frozen=True)
class Slot:
    """One assigned unit: its place in the rater's list and the order its results are shown in."""

    position: int
    unit: str
    order: list[int]  # order[i] = index into study.methods of the result shown i-th
    done: bool


class Storage:
    def __init__(self, study: Study, timeout: float = 30.0) -> None:
        self.study = study
        self.db = sqlite3.connect(study.database, timeout=timeout, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        ids = self._study_ids()
        if not ids:  # a new database; checked first so that every page view does not take the write lock
            self.db.executescript(SCHEMA)
            self.db.execute("INSERT OR IGNORE INTO studies VALUES (?, ?, ?)", (study.id, study.design, now()))
            ids = self._study_ids()
        if ids != [study.id]:
            self.db.close()
            raise StudyError(f"{study.database} holds answers of study {', '.join(ids)}, not {study.id}")

    def _study_ids(self) -> list[str]:
        try:
            return [row[0] for row in self.db.execute("SELECT id FROM studies")]
        except sqlite3.OperationalError:  # no tables yet
            return []

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Storage":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def join(self, code: str) -> Rater:
        """The rater with this name or code, created with their assignment on first visit."""
        code = normalise_code(code)
        if not code:
            raise StudyError("a rater needs a name or code")
        row = self._rater(code)
        if row is not None:
            return Rater(*row)
        self.db.execute("BEGIN IMMEDIATE")  # two sessions with the same new code: one creates, one finds
        try:
            row = self._rater(code)
            if row is None:
                plan = self.study.assignment(code)
                cur = self.db.execute("INSERT INTO raters (study, code, seed, created) VALUES (?, ?, ?, ?)",
                                      (self.study.id, code, plan.seed, now()))
                self.db.executemany("INSERT INTO assignments (rater, position, unit, result_order) "
                                    "VALUES (?, ?, ?, ?)",
                                    [(cur.lastrowid, i, unit, json.dumps(order))
                                     for i, (unit, order) in enumerate(plan.units)])
                row = (cur.lastrowid, code, plan.seed)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return Rater(*row)

    def _rater(self, code: str) -> tuple[int, str, int] | None:
        return self.db.execute("SELECT id, code, seed FROM raters WHERE study = ? AND code = ?",
                               (self.study.id, code)).fetchone()

    def slots(self, rater: Rater) -> list[Slot]:
        rows = self.db.execute("SELECT position, unit, result_order, done FROM assignments WHERE rater = ? "
                               "ORDER BY position", (rater.id,))
        return [Slot(pos, unit, json.loads(order), done is not None) for pos, unit, order, done in rows]

    def slot(self, rater: Rater, unit: str) -> Slot:
        found = [s for s in self.slots(rater) if s.unit == unit]
        if not found:
            raise StudyError(f"unit {unit} is not assigned to rater {rater.code}")
        return found[0]

    def current(self, rater: Rater) -> Slot | None:
        """The first unit the rater has not finished (where they come back to), None when all are done."""
        return next((s for s in self.slots(rater) if not s.done), None)

    def progress(self, rater: Rater) -> tuple[int, int]:
        slots = self.slots(rater)
        return sum(s.done for s in slots), len(slots)

    def answers(self, rater: Rater, unit: str) -> dict[tuple[str, str], float]:
        """This rater's answers on one unit: (question, method) -> value. Never anyone else's."""
        rows = self.db.execute("SELECT question, method, value FROM answers WHERE rater = ? AND unit = ?",
                               (rater.id, unit))
        return {(q, m): v for q, m, v in rows}

    def answer(self, rater: Rater, unit: str, question: str, method: str, value: float = 1.0) -> None:
        """Store one answer now, replacing the rater's earlier answer to the same question."""
        slot = self.slot(rater, unit)
        if question not in self.study.questions:
            raise StudyError(f"unknown question '{question}' (known: {', '.join(self.study.questions)})")
        if method not in self.study.methods:
            raise StudyError(f"unknown method '{method}'")
        if self.study.design == "score" and not (float(value).is_integer() and SCORE_MIN <= value <= SCORE_MAX):
            raise StudyError(f"a score is an integer from {SCORE_MIN} to {SCORE_MAX}, got {value}")
        if self.study.design == "pick":
            value = 1.0
        position = slot.order.index(self.study.methods.index(method))
        self.db.execute("BEGIN IMMEDIATE")
        try:
            if self.study.design == "pick":  # one chosen result per question
                self.db.execute("DELETE FROM answers WHERE rater = ? AND unit = ? AND question = ?",
                                (rater.id, unit, question))
            self.db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (rater.id, unit, question, method, float(value), position, now()))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def is_complete(self, rater: Rater, unit: str) -> bool:
        given = self.answers(rater, unit)
        if self.study.design == "pick":
            return {q for q, _ in given} == set(self.study.questions)
        return all((q, m) in given for q in self.study.questions for m in self.study.methods)

    def finish(self, rater: Rater, unit: str) -> None:
        """Mark a unit done (the rater moves on); refused while a question is unanswered."""
        if not self.is_complete(rater, unit):
            raise StudyError(f"unit {unit} has unanswered questions")
        self.db.execute("UPDATE assignments SET done = ? WHERE rater = ? AND unit = ? AND done IS NULL",
                        (now(), rater.id, unit))

    def all_answers(self) -> list[dict[str, Any]]:
        """Every answer with its rater's code, for the organiser's report."""
        rows = self.db.execute(
            "SELECT r.code, a.unit, a.question, a.method, a.value, a.position, a.answered, s.done IS NOT NULL "
            "FROM answers a JOIN raters r ON r.id = a.rater JOIN assignments s ON s.rater = a.rater "
            "AND s.unit = a.unit WHERE r.study = ? ORDER BY r.id, s.position, a.question, a.method",
            (self.study.id,))
        keys = ("rater", "unit", "question", "method", "value", "position", "answered", "unit_done")
        return [{**dict(zip(keys, row)), "unit_done": bool(row[-1])} for row in rows]

    def rater_progress(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT r.code, r.seed, COUNT(s.unit), COUNT(s.done) FROM raters r JOIN assignments s "
            "ON s.rater = r.id WHERE r.study = ? GROUP BY r.id ORDER BY r.id", (self.study.id,))
        return [{"rater": code, "seed": seed, "units": total, "done": done} for code, seed, total, done in rows]
