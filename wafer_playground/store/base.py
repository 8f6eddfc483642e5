"""The store's SQL, shared by the SQLite and PostgreSQL backends (`SQLStore`).

Over 600 lines on purpose: it is one class, every query the Store protocol needs, and each
method carries the same owner filter and secret check; split by table, those rules would be
spread over files that must change together.

Rules enforced here, not left to callers:
- nothing key-like is ever written: a params/meta dict with a field named like a credential
  (api_key, authorization, ...) or a value that looks like a key is refused (`SecretRefused`);
- turns are written as they happen (`start_turn` then `update_turn`), so a killed process loses
  at most what was in flight; turns left "streaming" by a dead writer become "interrupted".
- every query is filtered by `owner`; turns are owned through their conversation.

A backend supplies the connection (`_tx`, `_query`), whether a writer is alive
(`_writer_check`) and the few spellings the two SQL dialects disagree on (class attributes
below). Statements use `?` placeholders; the PostgreSQL backend translates them.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, Self

from .records import (
    ANONYMOUS,
    REQUEST_LOG_COLUMNS,
    ROLES,
    Conversation,
    ConversationSummary,
    NotFound,
    Preset,
    RequestRecord,
    Role,
    SavedGrammar,
    SavedPrompt,
    SecretRefused,
    SpendRow,
    StoreError,
    Surface,
    Turn,
    TurnStatus,
    Vote,
)
from .rows import Row, _conversation, _grammar, _preset, _prompt, _request, _turn
from .secrets import _check_no_secrets, looks_like_secret
from .values import (
    _REQUEST_FIELDS,
    _auto_title,
    _check_status,
    _check_surface,
    _clean_base_url,
    _decimal,
    _dumps,
    _like_escape,
    _loads,
    _new_id,
    _usage_fields,
    now_iso,
)

if TYPE_CHECKING:
    import pandas as pd

# A turn is its owner's through its conversation (two parameters: turn id, owner).
_OWNED_TURN = ("FROM turns t JOIN conversations c ON c.id = t.conversation_id"
               " WHERE t.id = ? AND c.owner = ?")


class Cursor(Protocol):
    """What `_tx()` yields: `execute` returns something with fetchone/fetchall/rowcount."""

    def execute(self, sql: str, args: Sequence[Any] = ...) -> Any: ...


class SQLStore:
    """The Store's behaviour over SQL; `SQLiteStore` and `PostgresStore` add the connection.

    History (conversations, their turns, the request log, votes) belongs to an *owner*: the
    fingerprint of the API key that made it (`client.key_fingerprint`). A store sees and
    changes only its owner's rows; `for_owner` gives another owner's view over the same
    connection. The library (presets, saved prompts, saved grammars) is per owner too.
    """

    owner: str = ANONYMOUS
    schema_version: int = 0
    recovered_on_open: int = 0
    _writer_value: str = ""
    # SQL spellings that differ between dialects (SQLite's here).
    _like = "LIKE"  # case-insensitive match (ASCII in SQLite)
    _concat = "group_concat"  # text aggregate with a separator
    _same = "IS"  # NULL-safe equality
    _bytewise = ""  # names sort byte by byte (SQLite's default), whatever the database locale
    _row_locks = False  # SQLite's BEGIN IMMEDIATE locks the whole file; others lock rows

    @property
    def _writer(self) -> str:
        """This process's writer token, stamped on rows while they stream."""
        return self._writer_value

    def for_owner(self, owner: str) -> Self:
        """This store seen by `owner` (same database, connection and lock; cheap to make)."""
        if not owner:
            raise StoreError("An owner is a key fingerprint; it cannot be empty.")
        view = copy.copy(self)
        view.owner = owner
        return view

    # -- what a backend provides

    def _tx(self) -> AbstractContextManager[Cursor]:
        """One short write transaction (all or nothing)."""
        raise NotImplementedError

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        raise NotImplementedError

    def _writer_check(self) -> Callable[[str | None], bool]:
        """A predicate: is the process that wrote this `writer` token still running?"""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _lock_conversation(self, alias: str = "") -> str:
        """`FOR UPDATE` on the conversation row where rows are locked one by one. Every
        transaction that changes a conversation's turns takes this lock first, so they queue
        in one order (no deadlock) and `start_turn`'s MAX(seq) + 1 cannot collide."""
        if not self._row_locks:
            return ""
        return f" FOR UPDATE OF {alias}" if alias else " FOR UPDATE"

    # -- conversations

    def create_conversation(self, title: str = "", *, model: str | None = None,
                            surface: Surface = "chat",
                            params: Mapping[str, Any] | None = None) -> str:
        _check_surface(surface)
        params = dict(params or {})
        _check_no_secrets("conversation params", params)
        cid, ts = _new_id(), now_iso()
        with self._tx() as c:
            c.execute(
                "INSERT INTO conversations (id, title, model, surface, params, created_at,"
                " updated_at, owner) VALUES (?,?,?,?,?,?,?,?)",
                (cid, title.strip(), model, surface, _dumps(params), ts, ts, self.owner),
            )
        return cid

    def get_conversation(self, conversation_id: str) -> Conversation | None:
        rows = self._query("SELECT * FROM conversations WHERE id = ? AND owner = ?",
                           (conversation_id, self.owner))
        return _conversation(rows[0]) if rows else None

    def update_conversation(self, conversation_id: str, *, title: str | None = None,
                            model: str | None = None,
                            params: Mapping[str, Any] | None = None) -> None:
        sets: list[str] = []
        args: list[Any] = []
        if title is not None:
            sets.append("title = ?")
            args.append(title.strip())
        if model is not None:
            sets.append("model = ?")
            args.append(model)
        if params is not None:
            _check_no_secrets("conversation params", params)
            sets.append("params = ?")
            args.append(_dumps(dict(params)))
        if model is not None or params is not None:
            # A rename is not activity: it must not reorder the history list.
            sets.append("updated_at = ?")
            args.append(now_iso())
        if not sets:
            return
        with self._tx() as c:
            cur = c.execute(f"UPDATE conversations SET {', '.join(sets)}"
                            " WHERE id = ? AND owner = ?", (*args, conversation_id, self.owner))
            if cur.rowcount == 0:
                raise NotFound(f"conversation {conversation_id} does not exist")

    def rename_conversation(self, conversation_id: str, title: str) -> None:
        if not title.strip():
            raise StoreError("A conversation title cannot be empty.")
        self.update_conversation(conversation_id, title=title)

    def delete_conversation(self, conversation_id: str) -> None:
        # Request-log rows survive (conversation_id -> NULL): spend history must not vanish
        # when a chat is deleted.
        with self._tx() as c:
            c.execute("DELETE FROM conversations WHERE id = ? AND owner = ?",
                      (conversation_id, self.owner))

    def list_conversations(self, search: str | None = None, *,
                           limit: int = 200) -> list[ConversationSummary]:
        where, args = "WHERE c.owner = ?", [self.owner]
        if search and search.strip():
            pat = f"%{_like_escape(search.strip())}%"
            where += (
                f" AND (c.title {self._like} ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM turns s"
                f" WHERE s.conversation_id = c.id AND s.content {self._like} ? ESCAPE '\\'))"
            )
            args += [pat, pat]
        rows = self._query(
            f"""SELECT c.*,
                  (SELECT COUNT(*) FROM turns t WHERE t.conversation_id = c.id) AS turn_count,
                  (SELECT {self._concat}(r.cost_usd, ' ') FROM requests r
                     WHERE r.conversation_id = c.id AND r.cost_usd IS NOT NULL) AS costs,
                  (SELECT substr(t.content, 1, 160) FROM turns t WHERE t.conversation_id = c.id
                     AND t.role = 'user' ORDER BY t.seq LIMIT 1) AS preview
                FROM conversations c {where}
                ORDER BY c.updated_at DESC, c.id LIMIT ?""",
            (*args, int(limit)),
        )
        out = []
        for r in rows:
            # Summed in Python: SQLite's SUM would turn the Decimal strings into floats.
            costs = [Decimal(x) for x in (r["costs"] or "").split()]
            out.append(ConversationSummary(
                id=r["id"], title=r["title"], model=r["model"], surface=r["surface"],
                created_at=r["created_at"], updated_at=r["updated_at"],
                turn_count=int(r["turn_count"]), cost_usd=sum(costs, Decimal(0)) if costs else None,
                preview=" ".join((r["preview"] or "").split()),
            ))
        return out

    # -- turns

    def start_turn(self, conversation_id: str, role: Role, content: str = "",
                   meta: Mapping[str, Any] | None = None, *,
                   status: TurnStatus | None = None) -> str:
        if role not in ROLES:
            raise StoreError(f"unknown role {role!r} (expected one of {', '.join(ROLES)})")
        status = status or ("streaming" if role == "assistant" else "done")
        _check_status(status)
        meta = dict(meta or {})
        _check_no_secrets("turn metadata", meta)
        tid, ts = _new_id(), now_iso()
        with self._tx() as c:
            if not c.execute("SELECT 1 FROM conversations WHERE id = ? AND owner = ?"
                             + self._lock_conversation(),
                             (conversation_id, self.owner)).fetchone():
                raise NotFound(f"conversation {conversation_id} does not exist")
            seq = c.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM turns WHERE"
                            " conversation_id = ?", (conversation_id,)).fetchone()[0]
            c.execute(
                "INSERT INTO turns (id, conversation_id, seq, role, content, status, meta,"
                " writer, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (tid, conversation_id, seq, role, content, status, _dumps(meta),
                 self._writer if status == "streaming" else None, ts, ts),
            )
            c.execute("UPDATE conversations SET updated_at = ? WHERE id = ?",
                      (ts, conversation_id))
            if role == "user" and content.strip():
                # An untitled chat is named after its first question (renamable later).
                c.execute("UPDATE conversations SET title = ? WHERE id = ? AND title = ''",
                          (_auto_title(content), conversation_id))
        return tid

    def update_turn(self, turn_id: str, *, content: str | None = None,
                    status: TurnStatus | None = None,
                    meta: Mapping[str, Any] | None = None) -> None:
        """Cheap enough to call about once a second while streaming (one small transaction).

        `meta` is merged into the stored meta (a key set to None is removed).
        """
        if status is not None:
            _check_status(status)
        if meta is not None:
            _check_no_secrets("turn metadata", meta)
        ts = now_iso()
        with self._tx() as c:
            row = c.execute(f"SELECT t.conversation_id, t.meta {_OWNED_TURN}"
                            + self._lock_conversation("c"), (turn_id, self.owner)).fetchone()
            if row is None:
                raise NotFound(f"turn {turn_id} does not exist")
            sets, args = ["updated_at = ?"], [ts]
            if content is not None:
                sets.append("content = ?")
                args.append(content)
            if status is not None:
                sets += ["status = ?", "writer = ?"]
                args += [status, self._writer if status == "streaming" else None]
            if meta:
                merged = _loads(row["meta"])
                for k, v in meta.items():
                    if v is None:
                        merged.pop(k, None)
                    else:
                        merged[k] = v
                sets.append("meta = ?")
                args.append(_dumps(merged))
            c.execute(f"UPDATE turns SET {', '.join(sets)} WHERE id = ?", (*args, turn_id))
            c.execute("UPDATE conversations SET updated_at = ? WHERE id = ?",
                      (ts, row["conversation_id"]))

    def get_turn(self, turn_id: str) -> Turn | None:
        rows = self._query(f"SELECT t.* {_OWNED_TURN}", (turn_id, self.owner))
        return _turn(rows[0]) if rows else None

    def list_turns(self, conversation_id: str) -> list[Turn]:
        rows = self._query(
            "SELECT t.* FROM turns t JOIN conversations c ON c.id = t.conversation_id"
            " WHERE t.conversation_id = ? AND c.owner = ? ORDER BY t.seq",
            (conversation_id, self.owner))
        return [_turn(r) for r in rows]

    def delete_turns_from(self, conversation_id: str, seq: int) -> int:
        """Drop turns with seq >= `seq` (edit/regenerate); returns how many were removed."""
        with self._tx() as c:
            if not c.execute("SELECT 1 FROM conversations WHERE id = ? AND owner = ?"
                             + self._lock_conversation(),
                             (conversation_id, self.owner)).fetchone():
                return 0
            cur = c.execute("DELETE FROM turns WHERE conversation_id = ? AND seq >= ?",
                            (conversation_id, int(seq)))
            c.execute("UPDATE conversations SET updated_at = ? WHERE id = ?",
                      (now_iso(), conversation_id))
            return cur.rowcount

    def recover_interrupted(self) -> int:
        """Mark turns/requests left "streaming" by dead processes as "interrupted".

        Returns the number of turns marked. Rows written by live processes (including this
        one) are left alone, so two servers sharing a file do not break each other's streams.
        """
        # Read first (partial indexes make this cheap): the History page calls this on every
        # draw, and it should not take the write lock when there is nothing to do.
        turns = self._query("SELECT id, writer FROM turns WHERE status = 'streaming'")
        reqs = self._query("SELECT id, writer FROM requests WHERE status = 'streaming'")
        if not turns and not reqs:
            return 0
        # Asked after the rows were read: a writer is registered before it writes a row, so
        # a row that was read has a writer that is either still registered now or gone.
        alive = self._writer_check()
        dead_turns = [(r["id"], r["writer"]) for r in turns if not alive(r["writer"])]
        dead_reqs = [(r["id"], r["writer"]) for r in reqs if not alive(r["writer"])]
        if not dead_turns and not dead_reqs:
            return 0
        ts = now_iso()
        marked = 0
        with self._tx() as c:
            # Guarded by writer too: the row may have finished (or been taken over) meanwhile.
            for tid, writer in dead_turns:
                marked += c.execute(
                    "UPDATE turns SET status = 'interrupted', writer = NULL, updated_at = ?"
                    f" WHERE id = ? AND status = 'streaming' AND writer {self._same} ?",
                    (ts, tid, writer)).rowcount
            for rid, writer in dead_reqs:
                c.execute("UPDATE requests SET status = 'interrupted', writer = NULL"
                          f" WHERE id = ? AND status = 'streaming' AND writer {self._same} ?",
                          (rid, writer))
        return marked

    # -- request log

    def log_request(self, *, model: str, base_url: str, surface: Surface,
                    params: Mapping[str, Any], status: TurnStatus = "streaming",
                    **fields: Any) -> str:
        """Record a request when it is sent; `update_request` fills in the outcome.

        Extra fields: conversation_id, turn_id, http_status, request_id, error_code,
        usage (costs.Usage or an OpenAI/Anthropic usage dict), cost (Decimal dollars or a
        costs.Cost), cost_kind, ttft_s, tokens_per_s, duration_s, response (dict).
        `params` is the request body; it must not contain keys or headers.
        """
        _check_surface(surface)
        _check_status(status)
        rid = _new_id()
        cols = self._request_columns(dict(fields, params=params, status=status, model=model))
        cols.update(id=rid, ts=fields.get("ts") or now_iso(), base_url=_clean_base_url(base_url),
                    surface=surface, writer=self._writer if status == "streaming" else None,
                    owner=self.owner)
        names = list(cols)
        with self._tx() as c:
            c.execute(f"INSERT INTO requests ({', '.join(names)}) VALUES "
                      f"({', '.join('?' * len(names))})", [cols[n] for n in names])
        return rid

    def update_request(self, request_row_id: str, **fields: Any) -> None:
        cols = self._request_columns(fields)
        if "status" in cols:
            cols["writer"] = self._writer if cols["status"] == "streaming" else None
        if not cols:
            return
        with self._tx() as c:
            cur = c.execute(f"UPDATE requests SET {', '.join(f'{k} = ?' for k in cols)}"
                            " WHERE id = ? AND owner = ?",
                            (*cols.values(), request_row_id, self.owner))
            if cur.rowcount == 0:
                raise NotFound(f"request {request_row_id} does not exist")

    def _request_columns(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        fields = dict(fields)
        unknown = set(fields) - set(_REQUEST_FIELDS) - {"usage", "cost", "ts"}
        if unknown:
            raise StoreError(f"unknown request field(s): {', '.join(sorted(unknown))}")
        if "usage" in fields:
            for k, v in _usage_fields(fields.pop("usage")).items():
                fields.setdefault(k, v)
        if "cost" in fields:
            cost = fields.pop("cost")
            fields.setdefault("cost_usd", cost)
            kind = getattr(cost, "kind", None)
            if kind is not None:
                fields.setdefault("cost_kind", kind)
        fields.pop("ts", None)
        cols: dict[str, Any] = {}
        for k, v in fields.items():
            if k == "params":
                _check_no_secrets("request params", v)
                cols[k] = _dumps(dict(v))
            elif k == "response":
                _check_no_secrets("response metadata", v or {})
                cols[k] = _dumps(dict(v or {}))
            elif k == "cost_usd":
                d = _decimal(v)
                # fixed-point text: str() would give "1.2E-7" for tiny per-request costs
                cols[k] = None if d is None else format(d, "f")
            elif k == "status":
                _check_status(v)
                cols[k] = v
            elif k in ("request_id", "error_code") and isinstance(v, str) and looks_like_secret(v):
                raise SecretRefused(f"Refusing to store {k}: it looks like a credential.")
            else:
                cols[k] = v
        return cols

    def get_request(self, request_row_id: str) -> RequestRecord | None:
        rows = self._query("SELECT * FROM requests WHERE id = ? AND owner = ?",
                           (request_row_id, self.owner))
        return _request(rows[0]) if rows else None

    def list_requests(self, *, surface: Surface | None = None,
                      conversation_id: str | None = None,
                      limit: int = 1000) -> list[RequestRecord]:
        where, args = ["owner = ?"], [self.owner]
        if surface:
            where.append("surface = ?")
            args.append(surface)
        if conversation_id:
            where.append("conversation_id = ?")
            args.append(conversation_id)
        clause = f"WHERE {' AND '.join(where)}"
        rows = self._query(f"SELECT * FROM requests {clause} ORDER BY ts DESC, id LIMIT ?",
                           (*args, int(limit)))
        return [_request(r) for r in rows]

    def spend_since(self, since: str) -> Decimal:
        """This owner's recorded cost in dollars of the requests logged at or after `since`
        (an ISO timestamp): what a budget counts, on every replica alike."""
        return self.spend_of_owners([self.owner], since)

    def spend_of_owners(self, owners: Sequence[str], since: str) -> Decimal:
        """The recorded spend of several owners together since `since` (a team's budget):
        crosses the owner partition, returns only the sum."""
        owners = sorted(set(owners))
        if not owners:
            return Decimal(0)
        rows = self._query(f"SELECT cost_usd FROM requests WHERE owner IN"
                           f" ({', '.join('?' * len(owners))}) AND ts >= ?"
                           " AND cost_usd IS NOT NULL", (*owners, since))
        return sum((Decimal(r[0]) for r in rows), Decimal(0))

    def spend_of_everyone(self, since: str) -> list[SpendRow]:
        """Spend per owner, model and UTC day since `since`, over EVERY owner: the one query
        that crosses the owner partition, for the admin page only (components/team.py
        decides who is an admin). Sorted by day, owner, model."""
        groups: dict[tuple[str, str, str], list[Any]] = {}
        for r in self._query("SELECT owner, model, substr(ts, 1, 10) AS day, status, cost_usd"
                             " FROM requests WHERE ts >= ?", (since,)):
            g = groups.setdefault((r["owner"], r["model"], r["day"]), [0, 0, Decimal(0)])
            g[0] += 1
            g[1] += r["status"] == "error"
            if r["cost_usd"] is not None:
                g[2] += Decimal(r["cost_usd"])
        return [SpendRow(owner=o, model=m, day=d, requests=n, errors=e, cost_usd=c)
                for (o, m, d), (n, e, c) in sorted(groups.items(),
                                                   key=lambda kv: (kv[0][2], kv[0][0], kv[0][1]))]

    def request_log_frame(self, *, limit: int = 100_000) -> pd.DataFrame:
        """The request log as a DataFrame for the Costs page's reprice (newest first).

        Token columns are nullable Int64 (a failed request may have no usage); `ts` is a
        UTC datetime; `cost_usd` holds the Decimal recorded at request time (or None).
        """
        import pandas as pd

        rows = self._query(
            f"SELECT {', '.join(REQUEST_LOG_COLUMNS)} FROM requests WHERE owner = ?"
            " ORDER BY ts DESC, id LIMIT ?",
            (self.owner, int(limit)),
        )
        df = pd.DataFrame([tuple(r) for r in rows], columns=list(REQUEST_LOG_COLUMNS))
        for col in ("prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens"):
            df[col] = pd.array(df[col].tolist(), dtype="Int64")
        df["ts"] = pd.to_datetime(df["ts"], utc=True, format="ISO8601")
        # From the raw rows: pandas' string dtype has already turned None into NaN.
        df["cost_usd"] = pd.Series(
            [None if r["cost_usd"] is None else Decimal(r["cost_usd"]) for r in rows],
            index=df.index, dtype=object)
        for col in ("ttft_s", "tokens_per_s"):
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
        return df

    # -- presets / prompts / grammars

    def save_preset(self, name: str, params: Mapping[str, Any], *,
                    surface: Surface = "chat") -> str:
        _check_surface(surface)
        _check_no_secrets("preset", params)
        return self._upsert_named("presets", name, {"surface": surface,
                                                    "params": _dumps(dict(params))})

    def list_presets(self, surface: Surface | None = None) -> list[Preset]:
        if surface:
            return [_preset(r) for r in self._list_named("presets", "surface", surface)]
        return [_preset(r) for r in self._list_named("presets")]

    def get_preset(self, name: str) -> Preset | None:
        row = self._get_named("presets", name)
        return _preset(row) if row else None

    def delete_preset(self, name: str) -> None:
        self._delete_named("presets", name)

    def save_prompt(self, name: str, text: str) -> str:
        if looks_like_secret(text):
            raise SecretRefused("Refusing to save this prompt: it contains something that "
                                "looks like an API key.")
        return self._upsert_named("prompts", name, {"text": text})

    def list_prompts(self) -> list[SavedPrompt]:
        return [_prompt(r) for r in self._list_named("prompts")]

    def get_prompt(self, name: str) -> SavedPrompt | None:
        row = self._get_named("prompts", name)
        return _prompt(row) if row else None

    def delete_prompt(self, name: str) -> None:
        self._delete_named("prompts", name)

    def save_grammar(self, name: str, ebnf: str) -> str:
        return self._upsert_named("grammars", name, {"ebnf": ebnf})

    def list_grammars(self) -> list[SavedGrammar]:
        return [_grammar(r) for r in self._list_named("grammars")]

    def get_grammar(self, name: str) -> SavedGrammar | None:
        row = self._get_named("grammars", name)
        return _grammar(row) if row else None

    def delete_grammar(self, name: str) -> None:
        self._delete_named("grammars", name)

    def _list_named(self, table: str, column: str | None = None,
                    value: Any = None) -> list[Row]:
        """This owner's rows of a library table by name (optionally where column = value)."""
        where, args = "owner = ?", [self.owner]
        if column:
            where += f" AND {column} = ?"
            args.append(value)
        return self._query(f"SELECT * FROM {table} WHERE {where} ORDER BY name{self._bytewise}",
                           args)

    def _get_named(self, table: str, name: str) -> Row | None:
        rows = self._query(f"SELECT * FROM {table} WHERE owner = ? AND name = ?",
                           (self.owner, name))
        return rows[0] if rows else None

    def _upsert_named(self, table: str, name: str, values: dict[str, Any]) -> str:
        name = name.strip()
        if not name:
            raise StoreError("A name is required.")
        ts = now_iso()
        cols = ["id", "owner", "name", *values, "updated_at"]
        updates = ", ".join(f"{k} = excluded.{k}" for k in [*values, "updated_at"])
        with self._tx() as c:
            c.execute(
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                f" ON CONFLICT(owner, name) DO UPDATE SET {updates}",
                (_new_id(), self.owner, name, *values.values(), ts),
            )
            return str(c.execute(f"SELECT id FROM {table} WHERE owner = ? AND name = ?",
                                 (self.owner, name)).fetchone()[0])

    def _delete_named(self, table: str, name: str) -> None:
        with self._tx() as c:
            c.execute(f"DELETE FROM {table} WHERE owner = ? AND name = ?", (self.owner, name))

    # -- votes

    def record_vote(self, prompt: str, candidates: Sequence[str], winner: str | None, *,
                    blind: bool = True, meta: Mapping[str, Any] | None = None) -> str:
        cands = [str(c) for c in candidates]
        if len(cands) < 2:
            raise StoreError("A vote needs at least two candidates.")
        if winner is not None and winner not in cands:
            raise StoreError(f"winner {winner!r} is not among the candidates")
        meta = dict(meta or {})
        _check_no_secrets("vote metadata", meta)
        vid = _new_id()
        with self._tx() as c:
            c.execute("INSERT INTO votes (id, ts, prompt, candidates, winner, blind, meta, owner)"
                      " VALUES (?,?,?,?,?,?,?,?)",
                      (vid, now_iso(), prompt, _dumps(cands), winner, int(blind), _dumps(meta),
                       self.owner))
        return vid

    def list_votes(self, limit: int = 1000) -> list[Vote]:
        rows = self._query("SELECT * FROM votes WHERE owner = ? ORDER BY ts DESC, id LIMIT ?",
                           (self.owner, int(limit)))
        return [Vote(id=r["id"], ts=r["ts"], prompt=r["prompt"],
                     candidates=json.loads(r["candidates"]), winner=r["winner"],
                     blind=bool(r["blind"]), meta=_loads(r["meta"])) for r in rows]

    def vote_tally(self) -> dict[str, dict[str, int]]:
        """Per model: appearances, wins, ties (a tie is a vote with no winner)."""
        tally: dict[str, dict[str, int]] = {}
        for v in self.list_votes(limit=1_000_000):
            for m in v.candidates:
                t = tally.setdefault(m, {"appearances": 0, "wins": 0, "ties": 0})
                t["appearances"] += 1
                if v.winner is None:
                    t["ties"] += 1
                elif v.winner == m:
                    t["wins"] += 1
        return tally

    # -- import (used by transcript.import_json)

    def import_conversation(self, conversation: Mapping[str, Any],
                            turns: Sequence[Mapping[str, Any]],
                            requests: Sequence[Mapping[str, Any]] = ()) -> str:
        """Insert a whole conversation in ONE transaction (all or nothing), new ids, the
        given timestamps kept. `requests[i]["turn_index"]` links a request to turns[i]."""
        _check_no_secrets("imported conversation", {
            "params": conversation.get("params", {}),
            "turns": [t.get("meta", {}) for t in turns],
            "requests": [{"params": r.get("params", {}), "response": r.get("response", {})}
                         for r in requests],
        })
        cid = _new_id()
        turn_ids = [_new_id() for _ in turns]
        with self._tx() as c:
            c.execute(
                "INSERT INTO conversations (id, title, model, surface, params, created_at,"
                " updated_at, owner) VALUES (?,?,?,?,?,?,?,?)",
                (cid, conversation.get("title", ""), conversation.get("model"),
                 conversation.get("surface", "chat"), _dumps(conversation.get("params", {})),
                 conversation["created_at"], conversation["updated_at"], self.owner),
            )
            for seq, (tid, t) in enumerate(zip(turn_ids, turns, strict=True)):
                _check_status(t["status"])
                c.execute(
                    "INSERT INTO turns (id, conversation_id, seq, role, content, status, meta,"
                    " writer, created_at, updated_at) VALUES (?,?,?,?,?,?,?,NULL,?,?)",
                    (tid, cid, seq, t["role"], t["content"],
                     # an imported "streaming" turn has no live writer: it was cut off
                     "interrupted" if t["status"] == "streaming" else t["status"],
                     _dumps(t.get("meta", {})), t["created_at"], t["updated_at"]),
                )
            for r in requests:
                idx = r.get("turn_index")
                cols = self._request_columns({k: v for k, v in r.items()
                                              if k not in ("turn_index", "ts", "base_url",
                                                           "surface")})
                if cols.get("status") == "streaming":
                    cols["status"] = "interrupted"
                cols.update(id=_new_id(), ts=r["ts"], base_url=_clean_base_url(r["base_url"]),
                            surface=r["surface"], conversation_id=cid,
                            turn_id=turn_ids[idx] if isinstance(idx, int) else None,
                            writer=None, owner=self.owner)
                names = list(cols)
                c.execute(f"INSERT INTO requests ({', '.join(names)}) VALUES "
                          f"({', '.join('?' * len(names))})", [cols[n] for n in names])
        return cid
