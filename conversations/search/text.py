"""The text side of search, the same for both databases: CJK bigrams, the query's
terms, the FTS5 translation of the websearch syntax, and snippets."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

# Hiragana, katakana, CJK ideographs (extension A and the main block), Hangul syllables,
# compatibility ideographs. Kept equal to the class in the PostgreSQL migration.
CJK_CLASS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
CJK_RUN = re.compile(f"[{CJK_CLASS}]+")
SNIPPET_CONTEXT = 60


def cjk_bigrams(run: str) -> list[str]:
    """Overlapping character pairs of one CJK run (a lone character stands for itself)."""
    if len(run) < 2:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


def search_text(text: str | None) -> str:
    """What the SQLite index holds for a message: its text, then the bigrams of each CJK
    run (the words of the text are tokenized by FTS5 itself)."""
    text = text or ""
    bigrams = [pair for run in CJK_RUN.findall(text) for pair in cjk_bigrams(run)]
    return f"{text}\n{' '.join(bigrams)}" if bigrams else text


@dataclass(frozen=True)
class Term:
    """One item of a query: a word or a quoted phrase (its words), maybe negated."""

    words: tuple[str, ...]
    negated: bool = False


@dataclass(frozen=True)
class ParsedQuery:
    """A websearch query as groups joined by OR, each group's terms joined by AND."""

    groups: tuple[tuple[Term, ...], ...]

    @property
    def positive_words(self) -> list[str]:
        """The words a match contains (for snippets)."""
        return [w for group in self.groups for t in group if not t.negated for w in t.words]

    @property
    def empty(self) -> bool:
        return not any(not t.negated for group in self.groups for t in group)


_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"\w+", re.UNICODE)


def parse_query(q: str) -> ParsedQuery:
    """websearch_to_tsquery's syntax: words (AND), "quoted phrases", -negation, `or`.
    Punctuation splits words as the database's tokenizers do."""
    groups: list[list[Term]] = [[]]
    for match in _TOKEN.finditer(q):
        negated, phrase, bare = match.group(1), match.group(2), match.group(3)
        if bare is not None and bare.lower() == "or":
            if groups[-1]:
                groups.append([])
            continue
        if bare is not None:
            negated = "-" if bare.startswith("-") else ""
            phrase = bare.lstrip("-")
        words = tuple(w.lower() for w in _WORD.findall(phrase or ""))
        if words:
            groups[-1].append(Term(words=words, negated=bool(negated)))
    return ParsedQuery(groups=tuple(tuple(g) for g in groups if g))


def _with_bigrams(words: tuple[str, ...]) -> list[str]:
    """A phrase's tokens as the index holds them: CJK runs as their bigrams."""
    tokens: list[str] = []
    for word in words:
        parts = re.split(f"([{CJK_CLASS}]+)", word)
        for part in parts:
            if not part:
                continue
            tokens.extend(cjk_bigrams(part) if CJK_RUN.fullmatch(part) else [part])
    return tokens


def websearch_text(parsed: ParsedQuery, *, positive_only: bool = False) -> str:
    """The query for PostgreSQL's websearch_to_tsquery, CJK runs as bigram phrases.
    `positive_only`: without the negated terms (what ranks a match: ts_rank of a query
    with a NOT ranks by the absent words too)."""
    groups = []
    for group in parsed.groups:
        items = [
            ("-" if t.negated else "") + '"' + " ".join(_with_bigrams(t.words)) + '"'
            for t in group
            if not (positive_only and t.negated)
        ]
        groups.append(" ".join(items))
    return " or ".join(groups)


def fts5_query(parsed: ParsedQuery) -> str | None:
    """The FTS5 MATCH expression of a parsed query; None when nothing can match (only
    negated terms)."""
    groups = []
    for group in parsed.groups:
        positive = [t for t in group if not t.negated]
        if not positive:
            continue
        phrase = " AND ".join(_fts5_phrase(t) for t in positive)
        negatives = "".join(f" NOT {_fts5_phrase(t)}" for t in group if t.negated)
        groups.append(f"({phrase}{negatives})")
    return " OR ".join(groups) or None


def _fts5_phrase(term: Term) -> str:
    return '"' + " ".join(_with_bigrams(term.words)).replace('"', '""') + '"'


def snippet(text: str, words: list[str]) -> str:
    """A window of `text` around the first match, HTML-escaped, every query word in it
    wrapped in <mark>; the start of the text when no word is found as such (a match
    through the title or a tokenizer's split)."""
    if not words:
        return html.escape(text[: SNIPPET_CONTEXT * 2])
    patterns = sorted({w for w in words if w}, key=len, reverse=True)
    pieces = []
    for word in patterns:
        escaped = re.escape(word)
        if CJK_RUN.fullmatch(word):
            pieces.append(escaped)
        else:
            pieces.append(rf"(?<!\w){escaped}(?!\w)")
    finder = re.compile("|".join(pieces), re.IGNORECASE)
    first = finder.search(text)
    start = 0 if first is None else max(0, first.start() - SNIPPET_CONTEXT)
    end = min(len(text), (first.end() if first else 0) + SNIPPET_CONTEXT)
    if start > 0:
        space = text.find(" ", start, start + 15)
        start = space + 1 if space != -1 else start
    window = text[start:end]
    out, last = [], 0
    for match in finder.finditer(window):
        out.append(html.escape(window[last : match.start()]))
        out.append(f"<mark>{html.escape(match.group())}</mark>")
        last = match.end()
    out.append(html.escape(window[last:]))
    return ("… " if start > 0 else "") + "".join(out) + (" …" if end < len(text) else "")
