"""HTML for token chips and probability-shaded output: every piece goes through html.escape.

Pure string building (no Streamlit), so the escaping is unit-testable: a piece such as
``<script>`` must come out inert. Whitespace is made visible, bytes that are not UTF-8 on
their own are shown as ``\\xNN``, and each chip carries its id so text and id stay linked.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from wafer_playground.client import TokenPiece
from wafer_playground.tokens import GenToken, format_prob, prob_shade

CSS = """
<style>
.wtk{display:flex;flex-wrap:wrap;gap:3px 2px;font-family:ui-monospace,SFMono-Regular,Menlo,
Consolas,monospace;font-size:13.5px;line-height:1.15;margin:2px 0 6px 0}
.wtk .c{display:inline-flex;flex-direction:column;align-items:center;min-width:14px;
padding:3px 4px 2px 4px;border-radius:6px;border:1px solid rgba(15,23,42,.08);cursor:default}
.wtk .c:hover{outline:2px solid #6366f1;outline-offset:0;z-index:1}
.wtk .c:hover .i{color:#4f46e5;font-weight:600}
.wtk .p{white-space:pre;color:inherit}
.wtk .i{font-size:10px;opacity:.75;margin-top:2px;font-variant-numeric:tabular-nums}
.wtk .ws{opacity:.45}
.wtk .b{color:#b45309;font-style:italic}
.wtk .sp .p{font-weight:600;color:#7c3aed}
.wtk .pre{opacity:.55}
.wtk .fork{outline:2px dashed #7c3aed}
.wtk-legend{font-size:12px;opacity:.8;margin:0 0 4px 0}
.wtk-legend span{padding:1px 6px;border-radius:4px;margin-right:4px}
</style>
"""

# Chips alternate through soft tints so token boundaries are visible in light and dark themes.
PALETTE = (
    "rgba(99,102,241,.16)", "rgba(16,185,129,.16)", "rgba(245,158,11,.18)",
    "rgba(236,72,153,.14)", "rgba(14,165,233,.16)", "rgba(132,204,22,.18)",
)

_WS = {" ": "·", "\n": "↵", "\t": "⇥", "\r": "␍"}


def visible(piece: str | bytes) -> tuple[str, bool]:
    """(escaped HTML for a piece with whitespace made visible, is-bytes)."""
    if isinstance(piece, bytes):
        return html.escape("".join(f"\\x{b:02x}" for b in piece)), True
    if piece == "":
        return '<span class="ws">∅</span>', False
    out: list[str] = []
    for ch in piece:
        if ch in _WS:
            out.append(f'<span class="ws">{_WS[ch]}</span>')
        elif not ch.isprintable():
            out.append(f'<span class="b">{html.escape(repr(ch)[1:-1])}</span>')
        else:
            out.append(html.escape(ch))
    return "".join(out), False


def _describe(piece: str | bytes) -> str:
    if isinstance(piece, bytes):
        return "bytes " + " ".join(f"{b:02x}" for b in piece) + " (not UTF-8 on its own)"
    return repr(piece)


def chips_html(pieces: Sequence[TokenPiece], *, specials: Sequence[int] = (),
               limit: int = 2000) -> str:
    """Coloured chips, piece over id; hover shows the id, the exact piece and its bytes."""
    special = set(specials)
    parts = [CSS, '<div class="wtk">']
    for n, tok in enumerate(pieces[:limit]):
        shown, is_bytes = visible(tok.piece)
        cls = "c sp" if tok.id in special else "c"
        title = f"#{n} · id {tok.id} · {_describe(tok.piece)}"
        body = f'<span class="b">{shown}</span>' if is_bytes else shown
        parts.append(
            f'<span class="{cls}" style="background:{PALETTE[n % len(PALETTE)]}" '
            f'title="{html.escape(title, quote=True)}">'
            f'<span class="p">{body}</span><span class="i">{tok.id}</span></span>')
    if len(pieces) > limit:
        parts.append(f'<span class="c">… {len(pieces) - limit} more</span>')
    parts.append("</div>")
    return "".join(parts)


def generated_html(tokens: Sequence[GenToken], *, prefix: Sequence[TokenPiece] = (),
                   chosen: TokenPiece | None = None, marked: int | None = None) -> str:
    """Generated tokens shaded by probability; hover lists the top alternatives.

    ``prefix`` pieces (e.g. the kept part of a fork) are drawn faded before the new tokens,
    then ``chosen`` (the token forked to) outlined; ``marked`` outlines a generated position.
    """
    parts = [CSS, '<div class="wtk-legend">probability: '
                  f'<span style="background:{prob_shade(0.95)}">high</span>'
                  f'<span style="background:{prob_shade(0.5)}">medium</span>'
                  f'<span style="background:{prob_shade(0.05)}">low</span></div>',
             '<div class="wtk">']
    for tok in prefix:
        shown, _ = visible(tok.piece)
        parts.append(f'<span class="c pre" title="{html.escape(f"kept prefix · id {tok.id}")}">'
                     f'<span class="p">{shown}</span><span class="i">{tok.id}</span></span>')
    if chosen is not None:
        shown, _ = visible(chosen.piece)
        parts.append(f'<span class="c fork" title="{html.escape(f"chosen · id {chosen.id}")}">'
                     f'<span class="p">{shown}</span><span class="i">{chosen.id}</span></span>')
    for t in tokens:
        shown, _ = visible(t.text)
        lines = [f"#{t.index} · id {t.id if t.id is not None else '?'} · {t.text!r} · "
                 f"p={format_prob(t.prob)}"]
        if t.alternatives:
            lines.append("top alternatives:")
            for a in t.alternatives[:10]:
                ident = f"id {a.id}" if a.id is not None else "id unknown"
                lines.append(f"  {a.text!r} ({ident}) {format_prob(a.prob)}")
        cls = "c fork" if marked == t.index else "c"
        parts.append(
            f'<span class="{cls}" style="background:{prob_shade(t.prob)}" '
            f'title="{html.escape(chr(10).join(lines), quote=True)}">'
            f'<span class="p">{shown}</span>'
            f'<span class="i">{t.id if t.id is not None else "?"}</span></span>')
    parts.append("</div>")
    return "".join(parts)
