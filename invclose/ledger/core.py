"""The machinery under :class:`~invclose.ledger.books.Ledger`: runs, state, reversal.

``LedgerCore`` owns the open file (:class:`~invclose.ledger.store.Store`), the configuration,
the operation guard (one operation at a time, each one DuckDB transaction) and the helpers the
verbs share:

* **Runs.** Every operation gets the next integer ``run_id``, carried by every row it stores;
  :meth:`LedgerCore._append_run` records it last, chained to the previous run's hash.
* **One stack.** Closes, recalculations and manual adjustments each start from the state in
  force (the result of the run below them, its ``opening_run``) and store their result as the
  new state. The state in force is the ``state_run`` of the latest run. A reversal
  (:meth:`LedgerCore._reverse_run`) pops the top of the stack: mirror adjustments (same row
  versions, opposite amounts) and mirror vouchers (same accounts and date, debit and credit
  swapped), the run marked ``reversed``, the state pointer back to its opening and the lock
  back to the previous active close. A recalculation that sits below a manual adjustment
  cannot be popped alone: the operation is refused and says which run to reverse first.
* **Lapsed adjustments.** An adjustment of a physical row version lapses with its invoice
  (close-semantics §1.2): in the general ledger it posts on its own date and is taken back on
  the invoice's date, so the physical version's adjustments net to zero once it is invoiced
  and the sub-ledger counts only the invoice. The invoice's posting takes back the
  adjustments the physical version has when it is posted; an adjustment stored after it (a
  close at a date before the invoice, run once the invoice is posted, or a reversal's mirror)
  posts its own take-back on the invoice's date (:meth:`LedgerCore._lapse_lines`). An
  adjustment dated after the invoice (a recalculation dated later, run before the invoice was
  posted) is taken back on its own date instead: on the invoice's date the GL never held it.
  A reversal therefore restores every date exactly: the mirror on the reversed run's date,
  and the take-back undone on the date it was taken back.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from invclose.config import CloseConfig, VoucherDetail
from invclose.errors import ConfigError
from invclose.hashing import content_id
from invclose.kernel.money import from_cents, to_cents
from invclose.kernel.vouchers import voucher_lines
from invclose.ledger import audit
from invclose.ledger.errors import LedgerBusyError, LedgerError, LedgerStateError
from invclose.ledger.postings import net_voucher_lines, take_back_on
from invclose.ledger.store import FORMAT_VERSION, LATEST_VERSION, Store, quote
from invclose.result import CloseResult
from invclose.schemas import RESULT_TABLES, conform, input_schema
from invclose.validate import normalize_accounts, normalize_items

__all__ = ["LedgerCore"]

#: Optional input columns that a close takes the same absent or null in every row (contract
#: §1: absent optional columns become typed nulls); ``status`` and ``seq`` have defaults of
#: their own and are always read.
_ABSENT_IS_NULL = (
    "marked_to",
    "order_id",
    "cost_share",
    "kind",
    "inventory_account",
    "offset_account",
)


class LedgerCore:
    """The open ledger file with the helpers every verb shares (see the module docstring).

    Parameters
    ----------
    path
        The DuckDB file; created (with ``config``) on first use.
    config
        The settings of every close. A new file without it gets the defaults; an existing
        file keeps the configuration it was created with, and a different ``config`` is
        refused (change it explicitly with :meth:`reconfigure`).
    read_only
        Open an existing file for reading only (several readers may share it).
    """

    def __init__(
        self, path: str | Path, config: CloseConfig | None = None, *, read_only: bool = False
    ) -> None:
        self._busy = threading.Lock()
        self._store = Store(path, read_only=read_only)
        try:
            self._open(config)
        except duckdb.Error as exc:
            self._store.release()
            msg = (
                f"cannot read the ledger file {self._store.path} ({type(exc).__name__}: {exc}); "
                "it may be damaged: restore it from a backup"
            )
            raise LedgerError(msg) from None
        except BaseException:
            self._store.release()
            raise

    def _open(self, config: CloseConfig | None) -> None:
        store = self._store
        if not store.is_initialised():
            if store.read_only:
                msg = f"{store.path} holds no ledger; open it writable once to create it"
                raise LedgerError(msg)
            cfg = config if config is not None else CloseConfig()
            normalize_items(cfg.items)
            normalize_accounts(cfg.accounts)
            store.create(cfg, audit.genesis_hash(cfg.fingerprint()))
        meta = store.meta()
        if meta.get("format_version") != FORMAT_VERSION:
            msg = (
                f"{store.path}: unsupported ledger format {meta.get('format_version')!r} "
                f"(this invclose reads format {FORMAT_VERSION!r}); open it with the invclose "
                "that wrote it"
            )
            raise LedgerError(msg)
        self._genesis = meta["genesis"]
        _, cfg, fingerprint = store.load_config()
        if config is not None and config.fingerprint() != fingerprint:
            msg = (
                f"{store.path} was created with a different configuration; open it without "
                "config= to use the stored one, or change it explicitly (a recorded operation) "
                "with Ledger.reconfigure(config, comment=...)"
            )
            raise ConfigError(msg)
        self._cfg = cfg
        # Only once the file is accepted: a refused open changes nothing.
        store.add_missing_views()

    # ------------------------------------------------------------------ lifecycle

    def disconnect(self) -> None:
        """Close the file so that another writer can open it (idempotent)."""
        self._store.release()

    def __enter__(self) -> LedgerCore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    def __del__(self) -> None:
        store = getattr(self, "_store", None)
        if store is not None:
            store.release()

    def __repr__(self) -> str:
        state = "open" if self._store.is_open else "disconnected"
        return f"Ledger({str(self._store.path)!r}, {state})"

    @property
    def path(self) -> Path:
        """The ledger file."""
        return self._store.path

    @property
    def config(self) -> CloseConfig:
        """The configuration in force."""
        return self._cfg

    @property
    def dimensions(self) -> tuple[str, ...]:
        """The financial dimension columns of the file."""
        return self._cfg.dims

    @contextmanager
    def _operation(self, verb: str, *, write: bool = True) -> Iterator[None]:
        if not self._busy.acquire(blocking=False):
            msg = f"{verb}: another operation is running on this ledger; they run one at a time"
            raise LedgerBusyError(msg)
        try:
            with self._store.transaction(verb, write=write):
                yield
        finally:
            self._busy.release()

    # ------------------------------------------------------------------ runs and state

    def _runs(self) -> dict[int, dict[str, Any]]:
        frame = self._store.query("SELECT * FROM runs ORDER BY run_id")
        return {int(r["run_id"]): r for r in frame.iter_rows(named=True)}

    def _head(self) -> dict[str, Any] | None:
        frame = self._store.query("SELECT * FROM runs ORDER BY run_id DESC LIMIT 1")
        return frame.row(0, named=True) if frame.height else None

    def _state_run(self) -> int | None:
        head = self._head()
        return None if head is None or head["state_run"] is None else int(head["state_run"])

    def _lock(self) -> dt.date | None:
        value = self._store.scalar(
            "SELECT max(date) FROM runs WHERE kind = 'close' AND status = 'active'"
        )
        return value if isinstance(value, dt.date) else None

    def _stack(self) -> list[dict[str, Any]]:
        """The runs in force, top first: the state run, its opening, and so on down."""
        runs = self._runs()
        out: list[dict[str, Any]] = []
        current = self._state_run()
        while current is not None:
            run = runs[current]
            out.append(run)
            current = None if run["opening_run"] is None else int(run["opening_run"])
        return out

    def _load_result(self, run_id: int) -> CloseResult:
        run = self._runs().get(int(run_id))
        if run is None or run["state_kind"] is None:
            msg = (
                f"run {run_id} stored no result (only closes, recalculations and manual "
                "adjustments do)"
            )
            raise LedgerError(msg)
        dims = self.dimensions
        tables = {}
        for name in RESULT_TABLES:
            frame = self._store.rows(name, run_id, dims).drop("run_id")
            if name == "adjustments":
                frame = frame.drop("version_hash")
            if name == "vouchers":
                # Not the take-back of lapsed adjustments (``_lapse_lines``): the ledger's,
                # not the close's.
                frame = frame.filter(pl.col("close_id") == str(run["close_id"]))
            tables[name] = conform(frame, name, dims)
        _, _, fingerprint = self._store.load_config(int(run["config_run"]))
        return CloseResult(
            close_id=str(run["close_id"]),
            closing_date=run["state_date"],
            run_kind=str(run["state_kind"]),
            dimensions=dims,
            config_fingerprint=fingerprint,
            lock_date=run["state_lock"],
            **tables,
        )

    def _state(self) -> CloseResult | None:
        state_run = self._state_run()
        return None if state_run is None else self._load_result(state_run)

    def _current(
        self,
        columns: list[str] | None = None,
        *,
        ids: pl.Series | None = None,
        as_of: dt.date | None = None,
    ) -> pl.DataFrame:
        """Current row versions in key order (date, seq, txn_id).

        Parameters
        ----------
        columns
            The columns to read; default ``run_id``, the input columns, ``row_hash``,
            ``item_group`` and the posted accounts. Reading only what a verb needs keeps
            large periods small in memory.
        ids
            Only the versions of these ``txn_id`` values (filtered in the file, before the
            latest version of each id is chosen: the same rows as filtering afterwards).
        as_of
            The versions in force on that day instead: a physical row whose invoice (its
            second, financial version) is dated after ``as_of`` was still physical then, so
            its physical version is read (``normalize_transactions(as_of=)`` makes a close
            of both versions keep that one). The rows a close at ``as_of`` takes.
        """
        if as_of is not None:
            return self._in_force(columns or ["txn_id", "row_hash"], ids, as_of)
        if columns is None:
            columns = [
                "run_id",
                *input_schema(self.dimensions),
                "row_hash",
                "item_group",
                "posted_inventory_account",
                "posted_offset_account",
            ]
        select = ", ".join(quote(c) for c in columns)
        order = "ORDER BY date, seq, txn_id"
        if ids is None:
            return self._store.query(f"SELECT {select} FROM current_transactions {order}").select(
                columns
            )
        wanted = pl.DataFrame({"txn_id": ids.cast(pl.String)}).unique()
        with self._store.registered("__invclose_ledger_ids", wanted) as table:
            frame = self._store.query(
                f"SELECT {select} FROM transactions "
                f"WHERE txn_id IN (SELECT txn_id FROM {table}) "
                f"{LATEST_VERSION} "
                f"{order}"
            )
        return frame.select(columns)

    def _in_force(self, columns: list[str], ids: pl.Series | None, as_of: dt.date) -> pl.DataFrame:
        """The row versions in force on ``as_of`` (see :meth:`_current`), in key order.

        A ``txn_id`` has at most two versions, its physical row and then its invoice; the
        invoice is passed over when it is dated after ``as_of``.
        """
        select = ", ".join(quote(c) for c in columns)
        # Every row, or only those of ``ids``.
        wanted = pl.DataFrame({"txn_id": [] if ids is None else ids.cast(pl.String)})
        with self._store.registered("__invclose_ledger_ids", wanted.unique()) as table:
            where = "" if ids is None else f"WHERE txn_id IN (SELECT txn_id FROM {table}) "
            frame = self._store.query(
                f"SELECT {select} FROM (SELECT *, count(*) OVER (PARTITION BY txn_id) "
                f"AS __versions FROM transactions {where}) "
                "QUALIFY row_number() OVER (PARTITION BY txn_id ORDER BY "
                "(__versions > 1 AND status = 'financial' AND date > ?), run_id DESC) = 1 "
                "ORDER BY date, seq, txn_id",
                [as_of],
            )
        return frame.select(columns)

    def _close_columns(self) -> list[str]:
        """The input columns to hand to a close: all but optional ones null in every stored row.

        An absent optional column and an all-null one are the same input to a close
        (``normalize_transactions`` turns absent optional columns into typed nulls), but a
        column read from the file is materialised, and the close carries it through every
        copy of the rows: leaving the empty ones out keeps a large period smaller in memory.
        """
        columns = list(input_schema(self.dimensions))
        optional = [c for c in _ABSENT_IS_NULL if c in columns]
        counts = self._store.query(
            "SELECT "
            + ", ".join(f"count({quote(c)}) AS {quote(c)}" for c in optional)
            + " FROM transactions"
        )
        empty = {c for c in optional if not counts[c][0]}
        return [c for c in columns if c not in empty]

    def _next_run_id(self) -> int:
        return int(self._store.scalar("SELECT coalesce(max(run_id), 0) + 1 FROM runs"))

    def _append_run(self, run_id: int, kind: str, input_hash: str, **fields: Any) -> None:
        head = self._head()
        if "lock_date" not in fields:
            fields["lock_date"] = self._lock()
        row: dict[str, Any] = {
            "run_id": run_id,
            "kind": kind,
            "status": "active",
            "state_run": None if head is None else head["state_run"],
            "config_run": self._store.scalar("SELECT max(run_id) FROM ledger_config"),
            **fields,
            "input_hash": input_hash,
            "output_hash": audit.written_output_hash(self._store, run_id),
            "prev_hash": self._genesis if head is None else head["hash"],
            "created_seq": run_id,
            "created_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
        }
        row["hash"] = audit.run_hash(row)
        self._store.insert("runs", pl.DataFrame([row]), self.dimensions)
        self._store.fault(f"{kind}_recorded")

    def _store_result(self, run_id: int, result: CloseResult, versions: pl.DataFrame) -> None:
        """Store every table of ``result`` under ``run_id`` (adjustments with their version)."""
        hashes = versions.select("txn_id", pl.col("row_hash").alias("version_hash"))
        for name, frame in result.tables().items():
            rows = frame.with_columns(run_id=pl.lit(run_id, pl.Int64))
            if name == "adjustments":
                rows = rows.join(hashes, on="txn_id", how="left", maintain_order="left")
            self._store.insert(name, rows, self.dimensions)
            self._store.fault(f"stored_{name}")

    def _certify(self, run_id: int) -> None:
        checks = audit.verify_checks(
            self._store, self._state_run(), self.dimensions, self._genesis
        ).with_columns(run_id=pl.lit(run_id, pl.Int64))
        self._store.insert("certificate", checks, self.dimensions)

    # ------------------------------------------------------------------ reversal

    def _reverse_run(self, target: dict[str, Any], comment: str | None) -> int:
        """Pop ``target`` (the top of the stack): mirror entries, status, state and lock."""
        dims = self.dimensions
        run_id = self._next_run_id()
        adj = self._store.rows("adjustments", int(target["run_id"]), dims)
        current = self._current(["txn_id", "row_hash", "date"], ids=adj["txn_id"].unique())
        rev_id = content_id(
            pl.Series([], dtype=pl.String),
            "reversal",
            str(target["close_id"]),
            str(target["date"]),
            prefix="X",
        )
        mirror = adj.with_columns(
            close_id=pl.lit(rev_id),
            posted_amount=pl.col("settled_amount"),
            settled_amount=pl.col("posted_amount"),
            adjustment=-pl.col("adjustment"),
            cost_delta=-pl.col("cost_delta"),
            run_id=pl.lit(run_id, pl.Int64),
        )
        # Every mirror posts on the reversed run's date; a lapsed one also undoes, on its
        # invoice's date, the take-back of the adjustment it mirrors.
        posting = mirror.with_columns(adjustment=to_cents(pl.col("adjustment")))
        detail = VoucherDetail(str(self._cfg.voucher_detail))
        lines = voucher_lines(posting, detail, list(dims), rev_id).with_columns(
            close_id=pl.lit(rev_id),
            posting_date=pl.lit(target["date"], pl.Date),
            debit=from_cents(pl.col("debit")),
            credit=from_cents(pl.col("credit")),
            run_id=pl.lit(run_id, pl.Int64),
        )
        self._store.insert("adjustments", mirror, dims)
        self._store.insert("vouchers", lines, dims)
        self._store.insert("vouchers", self._lapse_lines(mirror, current, rev_id, run_id), dims)
        self._store.execute(
            "UPDATE runs SET status = 'reversed' WHERE run_id = ?", [int(target["run_id"])]
        )
        self._store.fault("reversal_marked")
        opening = target["opening_run"]
        self._append_run(
            run_id,
            "reversal",
            audit.sha256_text(f"reversal\x1e{target['run_id']}\x1e{target['hash']}"),
            date=target["date"],
            close_id=rev_id,
            comment=comment,
            reverses=int(target["run_id"]),
            state_run=None if opening is None else int(opening),
            lock_date=self._lock(),
        )
        return run_id

    def _lapse_lines(
        self, adjustments: pl.DataFrame, current: pl.DataFrame, close_id: str, run_id: int
    ) -> pl.DataFrame:
        """Voucher lines taking back the adjustments of invoiced physical versions.

        ``adjustments`` are rows a run stores (with ``version_hash``); ``current`` has the
        current ``txn_id``, ``row_hash`` and ``date`` of their rows. An adjustment of a
        version that is no longer current (a physical row replaced by its invoice) lapsed
        with the invoice: on the invoice's date its opposite posts on the same accounts, as
        the invoice's posting would have taken it back had it been there. One voucher per
        transaction whatever the voucher detail (like the posting voucher it completes),
        ``<close_id>-L<n>`` in date and ``txn_id`` order, with ``close_id`` ``<close_id>-L``
        so that the run's own vouchers stay those of its result. Empty when nothing lapsed.
        """
        dims = list(self.dimensions)
        keys = ["txn_id", "item_id", *dims, "item_group"]
        invoiced = current.select(
            "txn_id", pl.col("row_hash").alias("current_hash"), pl.col("date").alias("invoiced")
        )
        lapsed = (
            adjustments.filter(pl.col("version_hash").is_not_null() & (pl.col("adjustment") != 0))
            .join(invoiced, on="txn_id", how="inner", maintain_order="left")
            .filter(pl.col("version_hash") != pl.col("current_hash"))
            # Dated as the invoice's posting dates the take-back of one it already finds.
            .with_columns(on=take_back_on("invoiced"))
        )
        if lapsed.is_empty():
            return pl.DataFrame()
        cents = to_cents(pl.col("adjustment"))
        legs = pl.concat(
            [
                lapsed.select(*keys, "on", account=pl.col("inventory_account"), net=-cents, leg=0),
                lapsed.select(*keys, "on", account=pl.col("offset_account"), net=cents, leg=1),
            ]
        )
        lines = (
            legs.group_by([*keys, "on", "account"])
            .agg(pl.col("net").sum(), pl.col("leg").min())
            .filter(pl.col("net") != 0)
            .with_columns(voucher_no=pl.struct("on", "txn_id").rank("dense").cast(pl.Int64))
            .sort("voucher_no", "leg", "account")
            .with_columns(line_no=pl.int_range(1, pl.len() + 1).over("voucher_no").cast(pl.Int64))
        )
        prefix = f"{close_id}-L"
        return net_voucher_lines(lines, prefix, prefix, dims, date="on").with_columns(
            run_id=pl.lit(run_id, pl.Int64)
        )

    def _recalculations_to_cancel(self, after: dt.date, *, inclusive: bool) -> list[dict[str, Any]]:
        """Recalculations in force dated after (or from) ``after``, top first; refuse if blocked."""
        stack = self._stack()

        def hit(run: dict[str, Any]) -> bool:
            late = run["date"] >= after if inclusive else run["date"] > after
            return bool(run["kind"] == "recalculation" and late)

        top: list[dict[str, Any]] = []
        for run in stack:
            if not hit(run):
                break
            top.append(run)
        blocked = [r for r in stack[len(top) :] if hit(r)]
        if blocked:
            first = blocked[0]
            above = [r for r in stack[: stack.index(first)] if not hit(r)]
            msg = (
                f"recalculation run {first['run_id']} dated {first['date']} must be cancelled "
                f"first, but {above[-1]['kind']} run {above[-1]['run_id']} was made on top of it; "
                "reverse that run first (reverse()), or choose a later date"
            )
            raise LedgerStateError(msg)
        return top
