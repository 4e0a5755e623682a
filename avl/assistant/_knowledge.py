"""What an Assistant derives from its training items, and retrieval over a caller's scope.

:class:`Knowledge` is an immutable snapshot built from the items of a
:class:`~avl.typing.TrainingStore` at one version: the known tables and foreign
keys, the trained pairs and documentation, IDF weights. :class:`Scope` is one
caller's view of it (from :func:`~avl.assistant._view.policy_view`), with what
retrieval needs precomputed. :func:`retrieve` picks, within a token budget, the
tables, examples and documentation of the caller's scope for one question.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence

import attrs

from avl.assistant._answer import TrainingItem
from avl.assistant._view import SchemaView
from avl.llm import estimate_tokens
from avl.schema import ExamplePair, ForeignKeySpec, TableSpec, ValueIndex
from avl.text import STOPWORDS, ident_words, similarity, stem, words

__all__ = ["Knowledge", "Retrieved", "Scope", "chunks", "content_stems", "item_id", "retrieve"]

KINDS = ("ddl", "documentation", "sql", "schema")


def item_id(kind: str, source: str, *parts: str) -> str:
    """A stable id: ``kind:`` and a hash of the source and content."""
    h = hashlib.sha256("\x1f".join((kind, source, *parts)).encode()).hexdigest()[:20]
    return f"{kind}:{h}"


def content_stems(text: str) -> frozenset[str]:
    """The stems of the content words of ``text``."""
    return frozenset(stem(w) for w in words(text) if w.lower() not in STOPWORDS)


def chunks(text: str, max_chars: int = 800) -> list[str]:
    """Split documentation into chunks of whole paragraphs (or sentences) <= max_chars."""
    out: list[str] = []
    current = ""
    pieces: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        para = " ".join(para.split())
        if len(para) <= max_chars:
            pieces.append(para)
        else:
            pieces.extend(re.split(r"(?<=[.!?])\s+", para))
    for piece in pieces:
        if not piece:
            continue
        if current and len(current) + 1 + len(piece) > max_chars:
            out.append(current)
            current = piece
        else:
            current = f"{current} {piece}".strip() if current else piece
    if current:
        out.append(current)
    return out


def _freeze_fks(value: Sequence[ForeignKeySpec]) -> tuple[ForeignKeySpec, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True, eq=False)
class Knowledge:
    """Everything derived from one version of the training items.

    Attributes:
        version: the store's version these were read at.
        items: the items, in the order first added.
        tables: lower-cased name -> table (from ``schema`` and ``ddl`` items).
        foreign_keys: every foreign key between known tables.
        pairs: the question->SQL items.
        docs: the documentation items.
        idf: IDF weights of the pairs' question stems.
        schema_version: a hash of the tables and columns (keys caches).
        tokens: item id -> the estimated tokens a pair or a document adds to a
            prompt (computed once per version).
    """

    version: str
    items: tuple[TrainingItem, ...] = ()
    tables: Mapping[str, TableSpec] = attrs.field(factory=dict)
    foreign_keys: tuple[ForeignKeySpec, ...] = attrs.field(default=(), converter=_freeze_fks)
    pairs: tuple[TrainingItem, ...] = ()
    docs: tuple[TrainingItem, ...] = ()
    idf: dict[str, float] = attrs.field(factory=dict)
    schema_version: str = ""
    tokens: Mapping[str, int] = attrs.field(factory=dict)

    @classmethod
    def build(
        cls,
        version: str,
        items: Sequence[TrainingItem],
        sizes: dict[str, int] | None = None,
        stems: dict[str, frozenset[str]] | None = None,
    ) -> Knowledge:
        """Derive everything from ``items``.

        Args:
            version: the store's version.
            items: the items at that version.
            sizes: item id -> token size, kept from earlier builds (an id names its
                content, so a size never changes); missing ones are added.
            stems: item id -> a pair question's content stems, kept the same way.
        """
        tables: dict[str, TableSpec] = {}
        fks: list[ForeignKeySpec] = []
        for i in items:
            if i.kind in ("schema", "ddl") and i.spec is not None:
                tables[i.spec.name.lower()] = i.spec
                for fk in i.foreign_keys:
                    if fk not in fks:
                        fks.append(fk)
        pairs = tuple(i for i in items if i.kind == "sql")
        df: dict[str, int] = {}
        memo = {} if stems is None else stems
        for p in pairs:
            got = memo.get(p.id)
            if got is None:
                got = memo[p.id] = content_stems(p.question)
            for s in got:
                df[s] = df.get(s, 0) + 1
        n = len(pairs)
        idf = {t: math.log((n + 1) / (c + 0.5)) + 1.0 for t, c in df.items()}
        text = json.dumps(
            sorted((t.name, [(c.name, c.type) for c in t.columns]) for t in tables.values())
        )
        return cls(
            version=version,
            items=tuple(items),
            tables=tables,
            foreign_keys=fks,
            pairs=pairs,
            docs=tuple(i for i in items if i.kind == "documentation"),
            idf=idf,
            schema_version=hashlib.sha256(text.encode()).hexdigest()[:16],
            tokens=_sizes(pairs, items, {} if sizes is None else sizes),
        )


def _sizes(
    pairs: Sequence[TrainingItem], items: Sequence[TrainingItem], cache: dict[str, int]
) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in pairs:
        got = cache.get(p.id)
        out[p.id] = cache[p.id] = (
            got if got is not None else estimate_tokens(p.question + p.sql) + 4
        )
    for d in items:
        if d.kind == "documentation":
            got = cache.get(d.id)
            out[d.id] = cache[d.id] = got if got is not None else estimate_tokens(d.text)
    return out


@attrs.frozen(kw_only=True, eq=False)
class Scope:
    """One caller's view of one :class:`Knowledge`, ready for retrieval.

    Attributes:
        view: the caller's :class:`~avl.assistant._view.SchemaView`.
        value_index: the caller's stored values by first word.
        words: lower-cased table name -> (table-name stems, column-name stems).
        ddl_tokens: lower-cased table name -> the estimated tokens of its DDL.
        item_ids: lower-cased table name -> the ids of its ``schema`` and ``ddl`` items.
    """

    view: SchemaView
    value_index: ValueIndex
    words: Mapping[str, tuple[frozenset[str], frozenset[str]]]
    ddl_tokens: Mapping[str, int]
    item_ids: Mapping[str, tuple[str, str]] = attrs.field(factory=dict)

    @classmethod
    def of(cls, view: SchemaView, value_index: ValueIndex, *, dialect: str, source: str) -> Scope:
        """Precompute the table words, DDL sizes and item ids of ``view``."""
        fks = view.foreign_keys
        return cls(
            view=view,
            value_index=value_index,
            item_ids={
                t.name.lower(): (item_id("schema", source, t.name), item_id("ddl", source, t.name))
                for t in view.tables
            },
            words={
                t.name.lower(): (
                    frozenset(ident_words(t.name)),
                    frozenset(w for c in t.columns for w in ident_words(c.name)),
                )
                for t in view.tables
            },
            ddl_tokens={
                t.name.lower(): estimate_tokens(
                    t.ddl(foreign_keys=fks, samples=True, dialect=dialect)
                )
                for t in view.tables
            },
        )


@attrs.frozen(kw_only=True)
class Retrieved:
    """What retrieval put in the context of one question.

    Attributes:
        tables: the tables, most relevant first.
        foreign_keys: the foreign keys among them.
        examples: the pairs shown.
        documentation: the documentation shown.
        shown: the items behind all of these (for the ``retrieved`` event).
        tokens: the estimated tokens of all of these.
    """

    tables: tuple[TableSpec, ...]
    foreign_keys: tuple[ForeignKeySpec, ...]
    examples: tuple[ExamplePair, ...]
    documentation: tuple[str, ...]
    shown: tuple[TrainingItem, ...]
    tokens: int


def retrieve(
    knowledge: Knowledge,
    scope: Scope,
    question: str,
    *,
    dense: Mapping[str, float],
    budget: int,
    pair_allowed: Callable[[TrainingItem], bool],
) -> Retrieved:
    """Tables first (within 70% of ``budget``), then pairs, then documentation.

    Only the caller's scope is considered: its tables, the pairs ``pair_allowed``
    accepts (the caller's guard allows their SQL) and documentation that neither
    names a hidden table or column nor is tied to one.
    """
    view = scope.view
    tables = {t.name.lower(): t for t in view.tables}
    qstems = content_stems(question)
    qwords = [w.lower() for w in words(question)]
    qlow = " " + " ".join(qwords) + " "
    # ---- tables: named by the question, holding a value it names, or close by embedding
    value_tables: dict[str, set[str]] = {}
    for first in set(qwords):
        for vt, vc, v in scope.value_index.get(first, ()):
            if len(v) > 2 and f" {' '.join(x.lower() for x in words(v))} " in qlow:
                value_tables.setdefault(vt.lower(), set()).add(vc)
    tscore: dict[str, float] = {}
    for key in tables:
        tw, cw = scope.words[key]
        s = 3.0 * len(tw & qstems) + 1.0 * len(cw & qstems)
        s += 2.0 * len(value_tables.get(key, ()))
        schema_id, ddl_id = scope.item_ids[key]
        s += 2.0 * dense.get(schema_id, dense.get(ddl_id, 0.0))
        tscore[key] = s
    ranked = sorted(tables, key=lambda k: -tscore[k])
    neighbours: dict[str, list[str]] = {}
    for fk in view.foreign_keys:
        a, b = fk.table.lower(), fk.ref_table.lower()
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    queue: list[str] = []
    for key in ranked:
        queue.append(key)
        if tscore[key] > 0:
            queue.extend(n for n in neighbours.get(key, ()) if n in tables)
    chosen: list[str] = []
    used = 0
    for key in queue:
        if key in chosen:
            continue
        c = scope.ddl_tokens[key]
        if used + c > budget * 0.7 and chosen:
            continue
        chosen.append(key)
        used += c
    specs = tuple(tables[k] for k in chosen)
    names = set(chosen)
    fks = tuple(
        fk
        for fk in view.foreign_keys
        if fk.table.lower() in names and fk.ref_table.lower() in names
    )
    # ---- pairs the caller's guard allows, most similar first
    scored = sorted(
        (
            (similarity(question, p.question, knowledge.idf) + 0.3 * dense.get(p.id, 0.0), p)
            for p in knowledge.pairs
        ),
        key=lambda x: -x[0],
    )
    examples: list[ExamplePair] = []
    shown: list[TrainingItem] = []
    for s, p in scored:
        if s <= 0 or len(examples) >= 12:
            break
        if view.mentions_hidden(f"{p.question} {p.sql}") or not pair_allowed(p):
            continue
        c = knowledge.tokens[p.id]
        if used + c > budget:
            break
        examples.append(ExamplePair(question=p.question, sql=p.sql))
        shown.append(p)
        used += c
    # ---- documentation not tied to (nor naming) what the caller may not read
    docs = sorted(
        (
            d
            for d in knowledge.docs
            if (not d.table or d.table.lower() in tables) and not view.mentions_hidden(d.text)
        ),
        key=lambda d: -(len(content_stems(d.text) & qstems) + dense.get(d.id, 0.0)),
    )
    doc_texts: list[str] = []
    for d in docs[:5]:
        c = knowledge.tokens[d.id]
        if used + c > budget:
            break
        doc_texts.append(d.text)
        shown.append(d)
        used += c
    schema_items = [
        i for i in knowledge.items if i.kind in ("schema", "ddl") and i.table.lower() in names
    ]
    return Retrieved(
        tables=specs,
        foreign_keys=fks,
        examples=tuple(examples),
        documentation=tuple(doc_texts),
        shown=tuple(schema_items + shown),
        tokens=used,
    )
