"""Untrusted text made inert for drawing: THE rule of SECURITY.md, "Untrusted text".

Every string that comes from an upstream (model cards, errors, request ids, stream events,
model output), an import or a share link goes through one of these before a page draws it:

- `clean(text)`: for places that render plain text (table cells, selectbox options, plotly
  hover text after `html.escape`): bidi and other control characters are made visible as
  `[U+202E]`, so a name cannot reorder itself or hide what it says; huge strings are cut.
- `md_text(text)`: for markdown sinks (st.markdown, captions, alerts, labels, badges):
  `clean`, then every ASCII punctuation character is backslash-escaped (CommonMark lets any
  of them be escaped and shows the character itself), so no image, link, HTML, emphasis,
  math or Streamlit directive (`:red[…]`, `:material/…:`, badges) can form.
- `model_markdown(text)`: model output, which keeps its formatting. Images become inert
  placeholders naming their target (remote images load only when the user asks), links show
  their real target next to their text, Streamlit directives are escaped, reference-link
  definitions are shown as text. Whatever the parse, no `![` survives outside code
  (see `_break_images`), so no image can load even when this scanner misreads the markdown.

Pure (no Streamlit): `components/untrusted.py` is the thin drawing side.
"""

from __future__ import annotations

import csv
import io
import re
import string
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# Display bounds: a 1 MB card field must not freeze the browser (issue 14).
NAME_LIMIT = 200  # display names, providers, ids, titles, badges
TEXT_LIMIT = 4_000  # descriptions, error messages
MODEL_TEXT_LIMIT = 400_000  # one chat answer drawn as markdown

# Explicit directional formatting (U+202A-U+202E, U+2066-U+2069), the implicit marks
# (U+200E/F, U+061C) and invisible separators: all of them can reorder or hide text.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
                  "\u2028\u2029")
_KEEP = frozenset("\n\t")
_PUNCT = frozenset(string.punctuation)


def _visible(ch: str) -> str:
    return f"[U+{ord(ch):04X}]"


def clean(value: Any, limit: int | None = NAME_LIMIT) -> str:
    """`str(value)` with bidi/control characters shown as `[U+XXXX]` and cut to `limit`."""
    text = "" if value is None else str(value)
    if limit is not None and len(text) > limit:
        text = text[:limit]
        cut = True
    else:
        cut = False
    if any(ch in _BIDI or (unicodedata.category(ch) == "Cc" and ch not in _KEEP)
           for ch in text):
        text = "".join(_visible(ch) if ch in _BIDI or (unicodedata.category(ch) == "Cc"
                                                       and ch not in _KEEP) else ch
                       for ch in text)
    return text + "…" if cut else text


def truncated(value: Any, limit: int) -> tuple[str, int]:
    """(the first `limit` characters, how many were left out): for "show all" views."""
    text = "" if value is None else str(value)
    return text[:limit], max(0, len(text) - limit)


# A colon (not escaped by an odd number of backslashes) that starts a directive Streamlit
# acts on: `:name[label]` / `:name{attrs}` (colours, badges, small, help), the bare ones it
# turns into elements, and icons. A colon in a URL (`a.test/a:b`) stays as it is.
# (`md_escape` has escaped the bracket by then, hence the optional backslash before it.)
_DIRECTIVE = re.compile(r"(?<!\\)((?:\\\\)*):(?=[A-Za-z][\w-]*\\?[\[{]"
                        r"|(?:material|streamlit)[/_]|(?:shimmer|small|help)\b)")
# Streamlit rewrites the source text ":material/" into an icon before markdown is parsed, so
# no backslash stops it: an invisible word joiner between the colon and the name does.
_ICON = re.compile(r":(?=(?:material|streamlit)[/_:])")
_JOINER = "\u2060"
_ALWAYS = re.compile(r"([\\`*\[\]<&$|~])")  # code, emphasis, links/images, HTML, entities, math
_LONE_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")  # a_b_c is not emphasis
# block markers at a line start: headings, quotes, list items, rules and setext underlines
_LINE_START = re.compile(r"^([ \t]*)(#{1,6}(?=\s|$)|>|[-+=](?=\s|$|[-+=]*\s*$)"
                         r"|\d{1,9}(?=[.)](?:\s|$)))", re.MULTILINE)


def md_escape(text: str) -> str:
    """Backslash-escape what could form markdown or a Streamlit directive in `text`.

    CommonMark shows an escaped punctuation character as itself. Escaped: code, emphasis,
    brackets (so no link or image), `<` (HTML, autolinks), `&` (an entity like `&#x202e;`
    would decode to a bidi override), `$` (math), tables, strikethrough, a directive's colon,
    and block markers at a line start (headings, quotes, lists). Other punctuation is left
    alone so ids and names read as they are ("Kimi-K2.5", "req_1").
    """
    text = _ALWAYS.sub(r"\\\1", text)
    text = _LONE_UNDERSCORE.sub(r"\\_", text)
    text = _ICON.sub(":" + _JOINER, _DIRECTIVE.sub(lambda m: m.group(1) + "\\:", text))
    return _LINE_START.sub(lambda m: m.group(1) + (
        m.group(2) + "\\" if m.group(2)[0].isdigit() else "\\" + m.group(2)), text)


def md_text(value: Any, limit: int | None = NAME_LIMIT, *, multiline: bool = False) -> str:
    """Untrusted text for a markdown sink: shown exactly, never as markup or a directive.

    One line by default (newlines become spaces: captions and labels); `multiline` keeps
    line breaks as hard breaks (descriptions).
    """
    text = md_escape(clean(value, limit))
    if multiline:
        return "  \n".join(line.strip() for line in text.split("\n"))
    return " ".join(text.split())


def md_code(value: Any, limit: int | None = NAME_LIMIT) -> str:
    """Untrusted text as an inline code span (ids, request ids): literal whatever it holds."""
    text = " ".join(clean(value, limit).split())
    if not text:
        return ""
    run = max((len(m) for m in re.findall(r"`+", text)), default=0) + 1
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{'`' * run}{pad}{text}{pad}{'`' * run}"


# ---- model output ------------------------------------------------------------------------

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_DEST = r"\(\s*<?([^\s()<>]*)>?(?:\s+(?:\"[^\"\n]*\"|'[^'\n]*'))?\s*\)"  # (url "title")
_IMAGE = re.compile(r"!\[([^\[\]\n]*)\]" + _DEST)
_LINK = re.compile(r"(?<![!\\])\[([^\[\]\n]*)\]" + _DEST)
_REF_DEF = re.compile(r"^( {0,3})\[([^\]\n]+)\]:", re.MULTILINE)


@dataclass(frozen=True)
class Segment:
    text: str
    code: bool


def _segments(text: str) -> list[Segment]:
    """Split markdown into prose and code (fenced blocks, inline code spans).

    Only what is rewritten depends on this split (a misread changes the look, not safety:
    `_break_images` runs over everything)."""
    out: list[Segment] = []
    lines = text.splitlines(keepends=True)
    prose: list[str] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None or (m.group(1)[0] == "`" and "`" in lines[i][m.end():]):
            prose.append(lines[i])
            i += 1
            continue
        fence = m.group(1)
        j = i + 1
        while j < len(lines):
            close = _FENCE.match(lines[j])
            if close and close.group(1)[0] == fence[0] and len(close.group(1)) >= len(fence):
                break
            j += 1
        if prose:
            out.extend(_inline_segments("".join(prose)))
            prose = []
        out.append(Segment("".join(lines[i:j + 1]), True))
        i = j + 1
    if prose:
        out.extend(_inline_segments("".join(prose)))
    return out


def _inline_segments(text: str) -> list[Segment]:
    """Code spans: a run of backticks up to the next run of the same length (CommonMark).

    One pass over the runs, so a flood of unmatched runs costs linear time, not a search each.
    """
    runs = [(m.start(), m.end()) for m in re.finditer(r"`+", text)]
    following: list[int | None] = [None] * len(runs)  # next run of the same length
    last: dict[int, int] = {}
    for i in range(len(runs) - 1, -1, -1):
        size = runs[i][1] - runs[i][0]
        following[i] = last.get(size)
        last[size] = i
    out: list[Segment] = []
    pos = 0
    for i, (begin, _) in enumerate(runs):
        j = following[i]
        if begin < pos or j is None:
            continue
        if begin > pos:
            out.append(Segment(text[pos:begin], False))
        out.append(Segment(text[begin:runs[j][1]], True))
        pos = runs[j][1]
    if pos < len(text):
        out.append(Segment(text[pos:], False))
    return out


def _target(url: str) -> str:
    # a code span: shown exactly, and no autolink swallows the escaped bracket after it
    return md_code(url, 300) or "(empty link)"


def _prose(text: str, images: bool) -> str:
    if not images:
        text = _IMAGE.sub(lambda m: "\\[image"
                          + (": " + md_escape(m.group(1)) if m.group(1).strip() else "")
                          + f" · not loaded · {_target(m.group(2))}\\]", text)

    def link(m: re.Match[str]) -> str:
        label, url = m.group(1), m.group(2)
        if label.strip() == url.strip():
            return m.group(0)
        return f"{m.group(0)} \\({_target(url)}\\)"

    text = _LINK.sub(link, text)
    text = _REF_DEF.sub(lambda m: f"{m.group(1)}\\[{m.group(2)}\\]:", text)
    return _ICON.sub(":" + _JOINER, _DIRECTIVE.sub(lambda m: m.group(1) + "\\:", text))


def _break_images(text: str) -> str:
    """No `![` left anywhere: a zero-width space goes between "!" and "[".

    Not a backslash: after an escaped backslash (`\\\\![`) it would undo itself, and in
    code it would show. The space stops an image whichever way the renderer reads the
    text (prose or code), so this is the safety net under `_segments`' reading."""
    return text.replace("![", "!\u200b[")


def model_markdown(value: Any, *, images: bool = False, limit: int = MODEL_TEXT_LIMIT) -> str:
    """Model output as markdown that keeps its formatting but loads nothing by itself.

    `images=True` (the user clicked "load images") keeps markdown images; everything else
    (directives, links with their targets, bidi) is treated the same.
    """
    text = clean(value, limit)
    parts: list[str] = []
    for seg in _segments(text):
        if seg.code:
            parts.append(seg.text if images else _break_images(seg.text))
        else:
            prose = _prose(seg.text, images)
            parts.append(prose if images else _break_images(prose))
    return "".join(parts)


def image_sources(value: Any) -> list[str]:
    """The targets of the markdown images in model output (for the "load images" prompt)."""
    text = "" if value is None else str(value)
    seen: list[str] = []
    for seg in _segments(text):
        if not seg.code:
            for m in _IMAGE.finditer(seg.text):
                if m.group(2) not in seen:
                    seen.append(m.group(2))
    return seen


def bounded_json(value: Any, limit: int = 1_000, items: int = 200) -> Any:
    """A JSON value for display: every string `clean`ed and cut, long arrays shortened."""
    if isinstance(value, str):
        shown, hidden = truncated(value, limit)
        return clean(shown, None) + (f"… [{hidden:,} more characters]" if hidden else "")
    if isinstance(value, dict):
        return {bounded_json(str(k), 200): bounded_json(v, limit, items)
                for k, v in list(value.items())[:items]}
    if isinstance(value, list | tuple):
        out = [bounded_json(v, limit, items) for v in value[:items]]
        if len(value) > items:
            out.append(f"… [{len(value) - items:,} more items]")
        return out
    return value


# ---- CSV ---------------------------------------------------------------------------------

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A spreadsheet-safe cell: text that a spreadsheet would run as a formula gets a `'`.

    Numbers stay numbers (a negative number is data, not a formula)."""
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """The one CSV writer for downloads: every cell through `csv_cell`.

    CRLF rows (RFC 4180): a field holding a lone CR is then quoted, not split."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([csv_cell(h) for h in header])
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return buf.getvalue()


def frame_csv(frame: Any) -> str:
    """A pandas DataFrame through `csv_text` (missing values as empty cells)."""
    out = frame.astype(object).where(frame.notna(), None)
    return csv_text([str(c) for c in out.columns], out.itertuples(index=False))


__all__ = ["MODEL_TEXT_LIMIT", "NAME_LIMIT", "TEXT_LIMIT", "bounded_json", "clean", "csv_cell",
           "csv_text", "frame_csv", "image_sources", "md_code", "md_escape", "md_text",
           "model_markdown", "truncated"]
