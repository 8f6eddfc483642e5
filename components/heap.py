"""Keep Streamlit's garbage collection after every run cheap: freeze what the app has built.

Streamlit calls `gc.collect(2)` on the script thread at the end of every run, fragment runs
included (`runner.postScriptGC`). A full collection walks every tracked object: here pandas,
the catalog, tokenizers and Streamlit itself. It took ~190 ms per run, holding the GIL. The
server's event loop could not forward the run's last messages meanwhile. So the last token
of an answer reached the browser ~0.2 s after the script had drawn it
(benchmarks/stream_render.py "lag"; benchmarks/README.md "Latest figures").

The objects created by the imports and the first run of a page live as long as the process.
`gc.freeze()` moves them out of the collector's sight, so later collections walk only what
sessions have created since. The cost is paid once per page and process: one full
collection and the freeze. Frozen objects are still freed by reference counting; only
cyclic garbage that exists at a freeze stays (at most once per page, a few KB).
"""

from __future__ import annotations

import gc
import threading

_frozen: set[str] = set()
_lock = threading.Lock()


def freeze_after_first_run(page: str) -> bool:
    """After the first run of `page` in this process: collect once, then freeze the heap.
    Returns True when it froze."""
    with _lock:
        if page in _frozen:
            return False
        _frozen.add(page)
    gc.collect()
    gc.freeze()
    return True


__all__ = ["freeze_after_first_run"]
