"""The offline NL-to-SQL generator (pure: no I/O, no model).

One question goes through, in order:

1. :func:`~avl.llm._offline._abstain.screen`: write intents, text addressed to the
   model and gibberish are not answered (an abstention with the reason).
2. Linking (:mod:`~avl.llm._offline._linking`): words to tables, columns, values.
3. Trained pairs (:mod:`~avl.llm._offline._examples`): the closest pair, adapted.
4. Composition: the intent steps (:mod:`~avl.llm._offline._steps`) and the one
   renderer (:mod:`~avl.llm._offline._render`).
5. Confidence (:func:`~avl.llm._offline._abstain.confidence`): below the threshold,
   an abstention that says what was understood.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import attrs
from cachetools import LRUCache

from avl.llm._offline._abstain import confidence, screen
from avl.llm._offline._examples import Adapted, adapt_example, disagreement, rank_examples
from avl.llm._offline._joins import plan_joins
from avl.llm._offline._linking import FuzzyKeys, Links, fuzzy_key_index, link_question
from avl.llm._offline._question import Question, parse_question
from avl.llm._offline._render import render
from avl.llm._offline._schema import SchemaIndex
from avl.llm._offline._steps import read_intent
from avl.schema import ExamplePair, ForeignKeySpec, TableSpec, Turn
from avl.text import ident_words, key_words, stem

__all__ = ["OfflineDraft", "OfflineGenerator"]

ValueIndex = Mapping[str, tuple[tuple[str, str, str], ...]]


@attrs.frozen(kw_only=True)
class OfflineDraft:
    """The generator's answer: SQL, or an abstention.

    Attributes:
        sql: the SQL (``""`` when abstaining).
        reason: why it abstains (``""`` when it answers).
        understood: what it understood of the question.
        confidence: 0..1, how much of the question the answer stands on.
        source: ``"example"`` (an adapted trained pair), ``"composed"``,
            ``"followup"`` (the previous turn's SQL, refined) or ``"screen"`` (not
            read).
    """

    sql: str = ""
    reason: str = ""
    understood: str = ""
    confidence: float = 0.0
    source: str = ""

    @property
    def abstained(self) -> bool:
        """Whether there is no SQL."""
        return not self.sql


class OfflineGenerator:
    """Deterministic NL-to-SQL over tables, foreign keys, stored values and pairs.

    Args:
        reuse_threshold: minimum score (0..1) for answering from a trained pair.
        abstain_below: minimum confidence (0..1) for answering a composed query.
    """

    def __init__(self, *, reuse_threshold: float = 0.4, abstain_below: float = 0.5) -> None:
        self.reuse_threshold = reuse_threshold
        self.abstain_below = abstain_below
        self._schemas: LRUCache[tuple[object, ...], SchemaIndex] = LRUCache(maxsize=16)
        # the typo lookup per stored-value index (see _fuzzy_keys)
        self._fuzzy: LRUCache[tuple[int, tuple[str, ...]], FuzzyKeys] = LRUCache(maxsize=8)

    def _schema(self, tables: Sequence[TableSpec], fks: Sequence[ForeignKeySpec]) -> SchemaIndex:
        key = (tuple(tables), tuple(fks))
        found = self._schemas.get(key)
        if found is None:
            found = SchemaIndex(tables, fks)
            self._schemas[key] = found
        return found

    def _fuzzy_keys(self, index: ValueIndex) -> FuzzyKeys:
        # contexts wrap the same stored index in a new read-only view per request:
        # key the lookup by the index's size and first keys (a stale entry only
        # proposes keys, which are then looked up in the request's own index)
        fingerprint = (len(index), tuple(itertools.islice(iter(index), 64)))
        hit = self._fuzzy.get(fingerprint)
        if hit is not None:
            return hit
        keys = fuzzy_key_index(index)
        self._fuzzy[fingerprint] = keys
        return keys

    def draft(
        self,
        question: str,
        *,
        tables: Sequence[TableSpec],
        foreign_keys: Sequence[ForeignKeySpec] = (),
        examples: Sequence[ExamplePair] = (),
        value_index: ValueIndex | None = None,
        values: Mapping[tuple[str, str], Sequence[str]] | None = None,
        dialect: str = "sqlite",
        turns: Sequence[Turn] = (),
    ) -> OfflineDraft:
        """Answer ``question`` with SQL or an abstention (never raises on text).

        Args:
            question: the question.
            tables: the tables it may read.
            foreign_keys: foreign keys among them.
            examples: trained pairs, most similar first.
            value_index: stored values by first lower-cased word.
            values: stored values per ``(table, column)`` (flag columns are read
                from them).
            dialect: the SQL dialect to write.
            turns: earlier turns of the session: a follow-up question refines the
                last one's SQL (:mod:`~avl.llm._offline._followup`).

        Returns:
            The draft.
        """
        q = parse_question(question)
        scr = screen(q)
        # the screen knows only the language's own words: a question made of names and
        # values alone ("Paris customers?") is not gibberish when the schema, a stored
        # value or a trained question holds one of its words (and words unknown to it
        # may still name values of the previous answer: "excluding cancelled")
        if (
            scr is not None
            and scr.kind == "gibberish"
            and not turns
            and _names_something(q, tables, value_index or {}, examples)
        ):
            scr = None
        if scr is not None and not (turns and scr.kind == "gibberish"):
            return OfflineDraft(reason=scr.reason, understood=scr.understood, source="screen")
        if not tables:
            return OfflineDraft(
                reason="no table of this database is available to answer from",
                source="screen",
            )
        schema = self._schema(tables, foreign_keys)
        index = value_index or {}
        fuzzy = self._fuzzy_keys(index) if index else None
        if turns:
            from avl.llm._offline._followup import refine, restate

            refined = refine(
                question,
                turns,
                tables=tables,
                foreign_keys=foreign_keys,
                value_index=index,
                values=values or {},
                dialect=dialect,
                fuzzy=fuzzy,
                schema_of=self._schema,
            )
            if refined is not None:
                last = next(t for t in reversed(turns) if t.sql.strip())
                return OfflineDraft(
                    sql=refined.sql,
                    understood=f"a follow-up of {last.question!r}: " + ", ".join(refined.changes),
                    confidence=1.0,
                    source="followup",
                )
            again = restate(question, turns, schema=schema, value_index=index, fuzzy=fuzzy)
            if again is not None:
                # the previous question about another table: read as a whole question
                return self.draft(
                    again,
                    tables=tables,
                    foreign_keys=foreign_keys,
                    examples=examples,
                    value_index=value_index,
                    values=values,
                    dialect=dialect,
                )
        if scr is not None:
            return OfflineDraft(reason=scr.reason, understood=scr.understood, source="screen")
        links = link_question(q, schema, index, fuzzy)
        if examples:
            # a close pair, adapted, beats composing: measured on both halves of
            # the shared set, preferring a confident composition to a pair scoring
            # below 0.55-0.85 lost 1-5 points trained
            found = self._from_examples(q, links, schema, examples, index, fuzzy, dialect)
            if found is not None:
                return found
        st = read_intent(q, links, schema, values or {})
        intent = st.intent
        plan = plan_joins(schema, intent.subject, intent.tables())
        problems = len(intent.problems) + len(plan.unreached)
        score, got, missed = confidence(q, links, st.used, problems)
        understood = _understood(intent.notes, got, missed)
        if score < self.abstain_below:
            return OfflineDraft(
                reason="it cannot be answered from this database: "
                + (
                    f"{', '.join(missed[:6])} {'is' if len(missed) == 1 else 'are'} not in its tables or values"
                    if missed
                    else "the question does not name its tables, columns or values"
                ),
                understood=understood,
                confidence=score,
                source="composed",
            )
        return OfflineDraft(
            sql=render(schema, intent, dialect),
            understood=understood,
            confidence=score,
            source="composed",
        )

    def _from_examples(
        self,
        q: Question,
        links: Links,
        schema: SchemaIndex,
        examples: Sequence[ExamplePair],
        index: ValueIndex,
        fuzzy: FuzzyKeys | None,
        dialect: str,
    ) -> OfflineDraft | None:
        ranked = rank_examples(q.text, examples, [t.name for t in schema.tables])
        best: tuple[float, ExamplePair, Adapted] | None = None
        for score, ex in ranked[:5]:
            if score < self.reuse_threshold:
                break
            old_q = parse_question(ex.question)
            old_links = link_question(old_q, schema, index, fuzzy)
            adapted = adapt_example(ex, q, links, old_q, old_links, dialect)
            if adapted.unplaced and score < 0.8:
                continue
            s = score - disagreement(links, adapted.sql, dialect)
            if s >= self.reuse_threshold and (best is None or s > best[0]):
                best = (s, ex, adapted)
        if best is None:
            return None
        s, ex, adapted = best
        what = ", ".join(adapted.changes) or "as trained"
        return OfflineDraft(
            sql=adapted.sql,
            understood=f"like the trained question {ex.question!r} ({what})",
            confidence=min(1.0, s),
            source="example",
        )


def _names_something(
    q: Question,
    tables: Sequence[TableSpec],
    value_index: ValueIndex,
    examples: Sequence[ExamplePair],
) -> bool:
    """Whether a word of ``q`` names a table, a column, a stored value's first word or
    a word of a trained question."""
    asked = {t.low for t in q.tokens if not t.punct}
    if any(w in value_index for w in asked):
        return True
    stems = {stem(w) for w in asked}
    for table in tables:
        if stems.intersection(ident_words(table.name)):
            return True
        for column in table.columns:
            if stems.intersection(ident_words(column.name)):
                return True
    return any(stems.intersection(key_words(pair.question)) for pair in examples)


def _understood(notes: Sequence[str], got: Sequence[str], missed: Sequence[str]) -> str:
    parts = []
    if notes:
        parts.append("; ".join(dict.fromkeys(notes)))
    elif got:
        parts.append("words linked: " + ", ".join(got))
    if missed:
        parts.append("not understood: " + ", ".join(missed))
    return ". ".join(parts)
