"""``Ledger``: the period ledger on one embedded DuckDB file (contract §5).

The ledger wraps the stateless API (``invclose.close``, ``recalculate``, ``check``); it never
computes a close itself. What it adds is state and safety (:mod:`invclose.ledger.core`):
every operation is a run with its own ``run_id``; closes, recalculations and manual
adjustments form one stack that reversals pop; every verb is one DuckDB transaction; the
file has one writer at a time.

* ``post`` validates a batch against the ledger and writes its posting vouchers
  (:mod:`invclose.ledger.postings`).
* ``close(D)`` first cancels the recalculations in force dated after D (newest first, each a
  reversal of its own), then closes from the state in force, stores every result table under
  a new ``run_id`` with its ``certificate``, and locks the period.
* ``recalculate``, ``adjust_on_hand`` and ``adjust_transactions`` adjust without settling
  (:mod:`invclose.ledger.manual`); ``reverse`` and ``reverse_recalculations`` pop the stack.
* ``history``, ``result``, ``vouchers``, ``transactions``, ``gl``, ``reconciliation`` and
  ``verify`` (:mod:`invclose.ledger.audit`) read.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from invclose.assemble import PostedAccounts, resolve_items
from invclose.close import run_check, run_for_ledger
from invclose.config import CloseConfig, Method, parse_date
from invclose.errors import ConfigError, InputValidationError
from invclose.hashing import content_id, row_hashes
from invclose.io import to_polars
from invclose.kernel.money import to_cents
from invclose.kernel.pipeline import PERPETUAL
from invclose.ledger import audit, manual, postings
from invclose.ledger.errors import (
    LedgerDateError,
    NothingToReverseError,
    RefusedAdjustmentError,
)
from invclose.ledger.reads import LedgerReads
from invclose.ledger.store import LATEST_VERSION, quote
from invclose.opening import known_to_opening
from invclose.result import CloseResult
from invclose.schemas import MONEY, input_schema, required_input
from invclose.validate import (
    GROUP_LIMIT,
    normalize_accounts,
    normalize_items,
    normalize_transactions,
)

__all__ = ["Ledger"]


class Ledger(LedgerReads):
    """The period ledger: post, check, close, recalculate, adjust and reverse on one file.

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

    Examples
    --------
    >>> books = invclose.Ledger("books.duckdb", config=cfg)   # doctest: +SKIP
    >>> books.post(january); books.close("2025-01-31")        # doctest: +SKIP
    >>> books.verify()                                         # doctest: +SKIP
    """

    def __enter__(self) -> Ledger:
        return self

    # ------------------------------------------------------------------ verbs

    def post(self, df: Any) -> int:
        """Validate and append transactions and write their posting vouchers.

        Parameters
        ----------
        df
            Transactions in any form ``invclose.close`` accepts (contract §1). A row whose
            ``txn_id`` is a posted physical row, with ``status`` financial, is its invoice.

        Returns
        -------
        int
            The ``run_id`` of the posting.

        Raises
        ------
        ClosedPeriodError
            A row is dated on or before the latest closing date (rows and date named); with
            rows in the same batch that are invalid, repeat a posted ``txn_id`` or invoice
            more than their physical row, this one error names those too (its ``failures``
            hold each row with its check).
        InputValidationError
            Invalid rows, a repeated ``txn_id``, an invoice of more quantity than its physical
            row, or a missing amount without costing.
        MissingAccountError
            A row must post but has no accounts, even from the mapping.

        Notes
        -----
        Any failure refuses the whole batch and writes nothing. Without a ``seq`` column, the
        rows follow every earlier posting in order (an invoice listed before its physical row
        right after that row). A batch holding a physical row and its
        invoice is costed once, in posting order, and stored as two posting runs: the batch
        without those invoices, then the invoices (so each version has its run; the returned
        ``run_id`` is the second's).
        """
        dims = self.dimensions
        with self._operation("post"):
            raw = to_polars(df, "transactions", required_input(dims, require_amount=False))
            named = [c for c in ("txn_id", "marked_to") if c in raw.columns]
            ids = pl.concat(
                [pl.Series([], dtype=pl.String)]
                + [raw[c].cast(pl.String, strict=False) for c in named]
            ).drop_nulls()
            stored = self._current(ids=ids)
            # Both rows of an invoice pair in the batch: the physical row is costed and posted
            # at its place, and its invoice after it (as if posted in a later batch).
            try:
                batch = normalize_transactions(
                    raw,
                    dimensions=dims,
                    require_amount=False,
                    known=(
                        stored.select("txn_id", "item_id", *dims, "qty") if stored.height else None
                    ),
                    keep_invoice_pairs=True,
                )
            except InputValidationError as exc:
                # Rows in the closed period are named beside the invalid ones.
                postings.refuse_invalid_and_backdated(raw, self._lock(), exc, stored)
                raise
            if batch.is_empty():
                msg = "nothing to post: the batch has no rows"
                raise InputValidationError(msg)
            paired = batch.filter(pl.col("txn_id").is_duplicated())
            # Every row but the invoice half of a pair in the batch meets the stored rows: a
            # pair's physical row whose id was posted already is a repeat like any other.
            invoice_half = pl.col("txn_id").is_in(paired["txn_id"].implode()) & (
                pl.col("status") == "financial"
            )
            if "seq" not in raw.columns:
                # In row order after every earlier posting, but an invoice listed before its
                # physical row right after that row (it was refused as posted before it).
                start = self._store.scalar("SELECT coalesce(max(seq), -1) + 1 FROM transactions")
                physical_at = (
                    pl.col("seq").filter(pl.col("status") == "physical").first().over("txn_id")
                )
                early = invoice_half & (pl.col("seq") < physical_at)
                place = pl.when(early).then(2 * physical_at + 1).otherwise(2 * pl.col("seq"))
                order = place.rank("ordinal").cast(pl.Int64) - 1
                batch = batch.with_columns(seq=order + int(start))
            postings.refuse_locked_or_repeated(
                batch,
                self._lock(),
                batch.filter(~invoice_half),
                stored,
                dims,
                self._order_rows(batch["order_id"]),
            )
            # One costing of the whole batch, pairs included, in posting order; the invoice
            # halves are then stored as a second posting.
            batch = self._cost_batch(batch)
            postings.missing_amounts(batch)
            postings.refuse_too_large(batch, self._group_sizes(batch), dims)
            run_id = self._write_posting(batch.filter(~invoice_half), stored)
            if not paired.is_empty():
                run_id = self._write_posting(
                    batch.filter(invoice_half), self._current(ids=paired["txn_id"].unique())
                )
        return run_id

    def _group_sizes(self, batch: pl.DataFrame) -> pl.DataFrame:
        """Per group of ``batch``, the sums of the absolute amounts (cents) and quantities
        (micro-units) of the ledger's current rows other than the batch's ids
        (:func:`postings.refuse_too_large`).

        One sum over every stored version settles the usual case: when it and the batch stay
        inside the bound, no group can pass it and nothing is read per group.
        """
        keys = ["item_id", *self.dimensions]
        empty = pl.DataFrame(
            schema={**batch.select(keys).schema, "amount": pl.Int128, "qty": pl.Int128}
        )
        bound = self._store.query(
            "SELECT coalesce(sum(abs(amount)), 0) AS amount, "
            "coalesce(sum(abs(qty)), 0) AS qty FROM transactions"
        )
        mine = batch.select(postings.units("amount").sum(), postings.units("qty").sum())
        both = bound.select(postings.units("amount"), postings.units("qty")) + mine
        if max(both.row(0)) <= GROUP_LIMIT:
            return empty
        items = batch.select("item_id").unique()
        with (
            self._store.registered("__invclose_ledger_groups", items) as groups,
            self._store.registered("__invclose_ledger_batch_ids", batch.select("txn_id")) as ids,
        ):
            select = ", ".join(quote(k) for k in keys)
            # The batch's items first, then the latest version of each id among their rows
            # (an id's versions share its item): not a ranking of every stored row.
            stored = self._store.query(
                f"SELECT {select}, sum(abs(amount)) AS amount, sum(abs(qty)) AS qty FROM ("
                "SELECT * FROM transactions "
                f"WHERE item_id IN (SELECT item_id FROM {groups}) "
                f"{LATEST_VERSION}"
                f") WHERE txn_id NOT IN (SELECT txn_id FROM {ids}) GROUP BY ALL"
            )
        if stored.is_empty():
            return empty
        return stored.select(*keys, postings.units("amount"), postings.units("qty"))

    def _order_rows(self, orders: pl.Series) -> pl.DataFrame:
        """The current versions of the posted rows of ``orders`` (their ids, items and kinds).

        Only the rows of those orders are read (then the latest version of each id among
        them), not every current row: most batches name no order, and a post reads nothing.
        """
        wanted = pl.DataFrame({"order_id": orders.drop_nulls().unique().cast(pl.String)})
        if wanted.is_empty():
            return pl.DataFrame(
                schema={
                    "txn_id": pl.String,
                    "item_id": pl.String,
                    "order_id": pl.String,
                    "kind": pl.String,
                }
            )
        with self._store.registered("__invclose_ledger_orders", wanted) as table:
            return self._store.query(
                "SELECT txn_id, item_id, order_id, kind FROM transactions "
                f"WHERE order_id IN (SELECT order_id FROM {table}) "
                f"{LATEST_VERSION}"
            )

    def _carried(self, versions: pl.Series) -> pl.DataFrame:
        """``phys_hash``, ``adjustment_date`` and ``adjusted`` (cents): the adjustments of the
        physical ``versions`` a batch invoices, per date. Only those versions are read: most
        batches invoice nothing and read nothing."""
        if versions.is_empty():
            return pl.DataFrame(
                schema={"phys_hash": pl.String, "adjustment_date": pl.Date, "adjusted": pl.Int64}
            )
        wanted = pl.DataFrame({"phys_hash": versions.unique()})
        with self._store.registered("__invclose_ledger_versions", wanted) as table:
            adjusted = self._store.query(
                "SELECT version_hash AS phys_hash, adjustment_date, SUM(adjustment) AS adjusted "
                f"FROM adjustments WHERE version_hash IN (SELECT phys_hash FROM {table}) "
                "GROUP BY ALL"
            )
        return adjusted.with_columns(adjusted=to_cents(pl.col("adjusted")))

    def _write_posting(self, batch: pl.DataFrame, stored: pl.DataFrame) -> int:
        """Store costed ``batch`` as one posting run with its vouchers; its ``run_id``.

        ``stored`` holds the current versions of the batch's ids the ledger has (the physical
        rows the batch's invoices replace).
        """
        dims = self.dimensions
        invoices = postings.check_against_ledger(batch, stored, dims)
        columns = list(input_schema(dims))
        batch = batch.with_columns(row_hash=row_hashes(batch, columns))
        grouped = resolve_items(batch, normalize_items(self._cfg.items), self._cfg)
        carried = self._carried(invoices["phys_hash"])
        run_id = self._next_run_id()
        post_id = content_id(batch["row_hash"], "post", prefix="P")
        rows, lines = postings.posting_vouchers(
            grouped.select(
                *columns, "item_group", *(["variance"] if "variance" in grouped.columns else [])
            ),
            invoices,
            carried,
            normalize_accounts(self._cfg.accounts),
            dims,
            post_id,
        )
        rows = rows.join(batch.select("txn_id", "row_hash"), on="txn_id", maintain_order="left")
        self._store.insert("transactions", rows.with_columns(run_id=pl.lit(run_id)), dims)
        self._store.fault("stored_transactions")
        self._store.insert("vouchers", lines.with_columns(run_id=pl.lit(run_id)), dims)
        self._append_run(
            run_id,
            "post",
            audit.joined_digest(batch["row_hash"]),
            date=batch["date"].max(),
            close_id=post_id,
        )
        return run_id

    def _cost_batch(self, batch: pl.DataFrame) -> pl.DataFrame:
        """Posting-time costing of a batch with ``invclose.post_costs``.

        The batch is replayed from the state in force after the rows posted since (every
        version: a physical row and its invoice are both replayed, each at its place, with
        the amounts they posted). A row without an amount takes the costed amount, and so
        does every row of a ``standard`` or ``moving_average`` item, whose posted cost is
        fixed at posting (close-semantics §3.7, §3.8): what its given amount holds beyond
        that is its ``variance``, posted to the mapping's ``variance_account``. Rows of
        periodic items given an amount keep it (the close corrects them).

        The ``revaluation`` rows that ``post_costs`` adds for a new standard cost (and that
        the ledger does not hold yet) are appended to the batch and posted with it, on the
        accounts the mapping gives kind ``revaluation``: the change to the inventory
        account, the opposite to the variance account. Until ``invclose.post_costs``
        exists, rows without an amount are refused.
        """
        import invclose

        post_costs = getattr(invclose, "post_costs", None)
        if post_costs is None:
            postings.missing_amounts(batch)
            return batch
        cfg = self._cfg
        items = normalize_items(cfg.items)
        methods = resolve_items(batch, items, cfg)["method"]
        # A dated standard cost may fall due with any batch (its revaluation is added once the
        # change is active by the batch's last date), whatever items the batch holds.
        dated_standard = items is not None and (
            items.filter(
                (pl.col("method") == Method.STANDARD.value) & pl.col("valid_from").is_not_null()
            ).height
            > 0
        )
        if not (batch["amount"].null_count() or methods.is_in(PERPETUAL).any() or dated_standard):
            return batch
        dims = self.dimensions
        state = self._state()
        columns = list(batch.columns)
        select = "SELECT " + ", ".join(quote(c) for c in columns) + " FROM transactions"
        lock = self._lock()
        if state is not None and lock is not None and lock <= state.closing_date:
            # Every row dated on or before the lock is known to the state (posting there is
            # refused, and an invoice of a row open in it is dated after the lock), so the
            # filter below drops them all: reading only the rows since the lock keeps a
            # costing post from reading the whole history.
            versions = self._store.query(select + " WHERE date > ? ORDER BY run_id", [lock])
        else:
            versions = self._store.query(select + " ORDER BY run_id")
        if state is not None:
            # Rows the state does not know, and the invoices of physical rows it holds open
            # (post_costs recognises them against the opening).
            versions = versions.filter(~known_to_opening(state.open_items, state.closed_items))
        # What each stored physical row posted as variance (a moving-average receipt that
        # crossed zero: its gap to negative stock), so that its invoice is compared with its
        # price (amount + variance) and does not undo the gap (close-semantics §3.8).
        invoiced = batch.filter(pl.col("status") == "financial")["txn_id"]
        variances = self._physical_variances(invoiced)
        costed = to_polars(
            post_costs(
                batch,
                items=cfg.items,
                dimensions=list(dims),
                method=str(cfg.method),
                include_physical_value=cfg.include_physical_value,
                opening=state,
                posted=versions.join(
                    variances.with_columns(status=pl.lit("physical")),
                    on=["txn_id", "status"],
                    how="left",
                ),
                physical_variance=variances,
            )
        )
        if "variance" not in costed.columns:
            costed = costed.with_columns(variance=pl.lit(None, MONEY))
        # post_costs returns the batch's rows in order, then the revaluation rows it adds.
        mine = costed.slice(0, batch.height)
        take = pl.col("amount").is_null() | methods.is_in(PERPETUAL)
        moving = methods == Method.MOVING_AVERAGE.value
        out = batch.with_columns(
            amount=pl.when(take).then(mine["amount"]).otherwise(pl.col("amount")),
            # A standard physical receipt posts at standard without variance: its invoice
            # reverses the physical posting and books the purchase price variance against
            # standard once (a variance at both would count it twice). A moving-average
            # physical receipt's only variance is the gap of negative stock it covered when
            # it crossed zero (§3.8): that is variance when it is received, and its invoice,
            # compared with its price, leaves it there.
            variance=pl.when(take & ((pl.col("status") == "financial") | moving)).then(
                mine["variance"]
            ),
        )
        added = costed.slice(batch.height)
        if added.is_empty():
            return out
        return pl.concat([out, added.select(out.columns)])

    def _physical_variances(self, ids: pl.Series) -> pl.DataFrame:
        """``txn_id`` and ``variance`` of the stored physical rows of ``ids`` that posted one.

        A physical row's posting voucher credits its offset account with its price (amount
        plus variance, :func:`postings.posting_vouchers`), so the variance is what that line
        holds beyond the amount. When the variance account is the offset account the two
        lines are one and no variance shows (the price is then taken as the amount).
        """
        found = self._store.query(
            "SELECT t.txn_id, "
            "CAST(SUM(v.credit - v.debit) - t.amount AS DECIMAL(38, 2)) AS variance "
            "FROM transactions t JOIN vouchers v ON v.run_id = t.run_id "
            "AND v.txn_id = t.txn_id AND v.account = t.posted_offset_account "
            "WHERE t.status = 'physical' AND list_contains(?, t.txn_id) "
            "AND (SELECT count(*) FROM transactions u "
            "     WHERE u.run_id = t.run_id AND u.txn_id = t.txn_id) = 1 "
            "GROUP BY t.txn_id, t.run_id, t.amount",
            [ids.unique().to_list()],
        )
        return (
            found.filter(pl.col("variance") != 0)
            .unique("txn_id", keep="last")
            .select("txn_id", pl.col("variance").cast(MONEY))
        )

    def check(self, date: Any) -> pl.DataFrame:
        """What a close at ``date`` would log: ``invclose.check`` over what is open (read-only).

        Parameters
        ----------
        date
            The closing date to check; after the latest closing date. Recalculations in force
            dated after it are left out, as the close would cancel them.

        Returns
        -------
        polars.DataFrame
            The columns of ``log`` (close-semantics §13).
        """
        closing = parse_date(date)
        with self._operation("check", write=False):
            self._require_after_lock(closing, "check")
            cancel = self._recalculations_to_cancel(closing, inclusive=False)
            state_run = self._state_run()
            if cancel:
                opening_run = cancel[-1]["opening_run"]
                state_run = None if opening_run is None else int(opening_run)
            opening = None if state_run is None else self._load_result(state_run)
            df = self._current(self._close_columns(), as_of=closing)
            return run_check(
                df, closing, self._cfg, opening, posted_accounts=self._posted_accounts(closing)
            )

    def _require_after_lock(self, date: dt.date, verb: str) -> None:
        lock = self._lock()
        if lock is not None and date <= lock:
            msg = (
                f"{verb}: the date {date.isoformat()} must be after the latest closing date "
                f"{lock.isoformat()}; reverse that close first to work on its period"
            )
            raise LedgerDateError(msg)

    def close(self, date: Any, *, comment: str | None = None) -> CloseResult:
        """Close the period at ``date``: settle, adjust, post vouchers and lock it.

        Parameters
        ----------
        date
            The closing date; after the latest one.
        comment
            Recorded in the history.

        Returns
        -------
        CloseResult
            The close's result, also stored (``result(close_id)``).

        Raises
        ------
        LedgerDateError
            ``date`` is on or before the latest closing date.
        LedgerStateError
            A recalculation to cancel sits below a manual adjustment.

        Notes
        -----
        First cancels the recalculations in force dated after ``date`` (newest first, each a
        reversal of its own), then runs ``invclose.close`` over the stored transactions from
        the state in force, stores its tables under a new ``run_id`` with its certificate.
        """
        closing = parse_date(date)
        with self._operation("close"):
            self._require_after_lock(closing, "close")
            for run in self._recalculations_to_cancel(closing, inclusive=False):
                note = (
                    f"cancelled by the close at {closing.isoformat()}: recalculation dated "
                    f"{run['date']} is after it"
                )
                self._reverse_run(run, note)
            self._store.fault("cancelled")
            return self._run_stateful("close", closing, comment=comment, items=None)

    def _run_stateful(
        self, kind: str, date: dt.date, *, comment: str | None, items: list[str] | None
    ) -> CloseResult:
        state_run = self._state_run()
        opening = None if state_run is None else self._load_result(state_run)
        # Only what the run needs: the input columns for the close (without optional columns
        # null in every row), and each row's version hash (for the adjustments and the input
        # hash), not the posted accounts. The versions in force on the date: a physical row
        # whose invoice is dated after it is closed as physical, whenever the invoice was
        # posted (as the stateless close of both versions does).
        columns = self._close_columns()
        current = self._current([*columns, "row_hash"], as_of=date)
        versions = current.select("txn_id", "row_hash")
        physical = current.filter(pl.col("status") == "physical")["txn_id"]
        df = current.select(columns)
        del current
        result = run_for_ledger(
            df,
            date,
            self._cfg,
            opening,
            kind,
            item_ids=items,
            posted_accounts=self._posted_accounts(date),
        )
        del df, opening
        run_id = self._next_run_id()
        parts = [kind, date.isoformat(), result.close_id, str(state_run), self._cfg.fingerprint()]
        input_hash = audit.joined_digest(versions["row_hash"], prefix="\x1e".join(parts) + "\x1e")
        self._store_result(run_id, result, versions)
        self._store_lapses(run_id, result, versions, physical)
        del versions
        self._append_run(
            run_id,
            kind,
            input_hash,
            date=date,
            close_id=result.close_id,
            comment=comment,
            opening_run=state_run,
            state_run=run_id,
            lock_date=date if kind == "close" else self._lock(),
            state_date=result.closing_date,
            state_lock=result.lock_date,
            state_kind=result.run_kind,
        )
        if kind == "close":
            self._certify(run_id)
            self._store.fault("certified")
        return result

    def _store_lapses(
        self, run_id: int, result: CloseResult, versions: pl.DataFrame, physical: pl.Series
    ) -> None:
        """Post the take-back of the run's adjustments of physical rows already invoiced.

        A close at D adjusts a row that was ``physical`` at D (its version in force) but
        whose invoice, dated after D, the ledger already holds: the adjustment lapses with
        that invoice, whose posting could not take it back (``LedgerCore._lapse_lines``).
        """
        adjusted = result.adjustments.filter(pl.col("txn_id").is_in(physical.implode()))
        if adjusted.is_empty():
            return
        adjusted = adjusted.join(
            versions.select("txn_id", pl.col("row_hash").alias("version_hash")),
            on="txn_id",
            how="left",
            maintain_order="left",
        )
        current = self._current(["txn_id", "row_hash", "date"], ids=adjusted["txn_id"])
        lines = self._lapse_lines(adjusted, current, result.close_id, run_id)
        self._store.insert("vouchers", lines, self.dimensions)

    def _posted_accounts(self, date: dt.date) -> PostedAccounts:
        """The accounts rows were posted to (their versions in force at ``date``), by id.

        The close fills a row's missing accounts from the configuration in force, but the
        ledger posted the row with the mapping in force then: after ``reconfigure`` they can
        differ (or the new mapping lack the row's kind), and an adjustment must correct the
        accounts that hold the row's value (for a physical row closed as physical at ``date``
        though invoiced since, those of its physical version).
        """

        def posted(ids: pl.Series) -> pl.DataFrame:
            return self._current(
                ["txn_id", "posted_inventory_account", "posted_offset_account"],
                ids=ids,
                as_of=date,
            ).select(
                "txn_id",
                inventory_account="posted_inventory_account",
                offset_account="posted_offset_account",
            )

        return posted

    def recalculate(
        self, date: Any, items: list[str] | None = None, *, comment: str | None = None
    ) -> CloseResult:
        """Adjust (without settling or locking) up to ``date``, for ``items`` or every item.

        Parameters
        ----------
        date
            The recalculation date; after the latest closing date.
        items
            Item ids to limit it to (``invclose.recalculate``'s ``item_ids``).
        comment
            Recorded in the history.

        Returns
        -------
        CloseResult
            The recalculation's result (no settlements), the new state in force.

        Notes
        -----
        Its adjustments and vouchers are dated ``date``, which must be after the latest
        closing date and on or after any recalculation in force.
        """
        day = parse_date(date, "recalculation date")
        with self._operation("recalculate"):
            self._require_after_lock(day, "recalculate")
            state_run = self._state_run()
            if state_run is not None:
                state_date = self._runs()[state_run]["state_date"]
                if day < state_date:
                    msg = (
                        f"recalculate: a run dated {state_date} is in force; recalculate on or "
                        "after it, or cancel later recalculations with reverse_recalculations()"
                    )
                    raise LedgerDateError(msg)
            ids = None if items is None else [str(i) for i in items]
            return self._run_stateful("recalculation", day, comment=comment, items=ids)

    def reverse(self, *, comment: str | None = None) -> list[int]:
        """Reverse the latest close or manual adjustment (and recalculations posted after it).

        Each reversal posts mirror adjustments and vouchers on the date of what it reverses
        (and, for an adjustment of a physical row invoiced since, undoes its take-back on the
        invoice's date: see :mod:`invclose.ledger.core`), marks the run ``reversed``, returns
        the state in force to the run's opening and lifts the lock back to the previous
        closing date.

        Parameters
        ----------
        comment
            Recorded on every reversal of the call.

        Returns
        -------
        list of int
            The ``run_id`` of each reversal, in the order they were made.

        Raises
        ------
        NothingToReverseError
            No close or manual adjustment is in force.
        """
        with self._operation("reverse"):
            stack = self._stack()
            targets: list[dict[str, Any]] = []
            for run in stack:
                targets.append(run)
                if run["kind"] in ("close", "adjustment"):
                    break
            else:
                extra = ""
                if stack:
                    ids = ", ".join(str(r["run_id"]) for r in stack)
                    extra = (
                        f"; only recalculations are in force (runs {ids}): cancel them with "
                        "reverse_recalculations(from_date)"
                    )
                msg = f"nothing to reverse: no close or manual adjustment is in force{extra}"
                raise NothingToReverseError(msg)
            return [self._reverse_run(t, comment) for t in targets]

    def reverse_recalculations(self, from_date: Any, *, comment: str | None = None) -> list[int]:
        """Cancel every recalculation in force dated on or after ``from_date``, newest first.

        Returns the ``run_id`` of each reversal (none if there is nothing to cancel); raises
        :class:`LedgerStateError` if such a recalculation sits below a close or a manual
        adjustment.
        """
        day = parse_date(from_date, "date")
        with self._operation("reverse"):
            targets = self._recalculations_to_cancel(day, inclusive=True)
            return [self._reverse_run(t, comment) for t in targets]

    def adjust_on_hand(
        self,
        item_id: str,
        dims: dict[str, Any] | None = None,
        *,
        new_value: Any = None,
        adjustment: Any = None,
        comment: str,
    ) -> CloseResult:
        """Set a group's on-hand value (``new_value``) or change it (``adjustment``).

        Parameters
        ----------
        item_id, dims
            The group: the item and a value for each financial dimension.
        new_value, adjustment
            Exactly one: the new on-hand value, or the change (exact amounts, never floats).
        comment
            Why; required and recorded.

        Returns
        -------
        CloseResult
            The new state in force (``adjustments`` and ``vouchers`` are the adjustment's).

        Raises
        ------
        RefusedAdjustmentError
            No close, not a periodic method, no positive open quantity, negative value.

        Notes
        -----
        Every open financial receipt of the group dated on or before the latest closing date
        moves to one unit cost (cumulative rounding in key order); dated that closing date.
        """
        with self._operation("adjust"):
            state_run, state, lock = self._manual_base(comment)
            changes = manual.on_hand_changes(
                state, self._cfg, lock, item_id, dims, new_value, adjustment
            )
            return self._store_manual(changes, state_run, state, lock, comment)

    def adjust_transactions(self, changes: Any, *, comment: str) -> CloseResult:
        """Set (``new_value``) or change (``adjustment``) the open value of chosen receipts.

        Parameters
        ----------
        changes
            A table of ``txn_id`` with ``new_value`` or ``adjustment`` (one per row): open
            financial receipts dated on or before the latest closing date.
        comment
            Why; required and recorded.

        Returns
        -------
        CloseResult
            The new state in force; dated, posted and reversed like ``adjust_on_hand``.
        """
        with self._operation("adjust"):
            state_run, state, lock = self._manual_base(comment)
            table = manual.transaction_changes(state, self._cfg, lock, changes)
            return self._store_manual(table, state_run, state, lock, comment)

    def _manual_base(self, comment: str) -> tuple[int, CloseResult, dt.date]:
        if not isinstance(comment, str) or not comment.strip():
            msg = "a manual adjustment needs a comment saying why"
            raise RefusedAdjustmentError(msg)
        lock = self._lock()
        state_run = self._state_run()
        if lock is None or state_run is None:
            msg = "manual adjustments need a close: close a period first"
            raise RefusedAdjustmentError(msg)
        return state_run, self._load_result(state_run), lock

    def _store_manual(
        self,
        changes: pl.DataFrame,
        state_run: int,
        state: CloseResult,
        lock: dt.date,
        comment: str,
    ) -> CloseResult:
        keys = ["item_id", *self.dimensions]
        fallback = self._store.query(
            "SELECT "
            + ", ".join(quote(k) for k in keys)
            + ", posted_inventory_account AS inventory_account, "
            "posted_offset_account AS offset_account FROM current_transactions "
            "WHERE status = 'financial' AND qty > 0 AND posted_inventory_account IS NOT NULL "
            "AND posted_offset_account IS NOT NULL QUALIFY row_number() OVER (PARTITION BY "
            + ", ".join(quote(k) for k in keys)
            + " ORDER BY date DESC, seq DESC, txn_id DESC) = 1"
        )
        result = manual.apply_changes(
            state, changes, self._cfg, normalize_accounts(self._cfg.accounts), fallback, lock
        )
        run_id = self._next_run_id()
        self._store_result(run_id, result, self._current(["txn_id", "row_hash"]))
        self._append_run(
            run_id,
            "adjustment",
            audit.sha256_text(
                "adjustment\x1e" + str(state_run) + "\x1e" + audit.digest(self._store, changes)
            ),
            date=lock,
            close_id=result.close_id,
            comment=comment,
            opening_run=state_run,
            state_run=run_id,
            state_date=result.closing_date,
            state_lock=result.lock_date,
            state_kind=result.run_kind,
        )
        return result

    def reconfigure(self, config: CloseConfig, *, comment: str) -> int:
        """Change the configuration from now on, as a recorded run; dimensions cannot change.

        Returns the ``run_id``. Runs already stored keep the configuration they used.
        """
        if config.dims != self.dimensions:
            msg = f"the file's financial dimensions {list(self.dimensions)} cannot change"
            raise ConfigError(msg)
        normalize_items(config.items)
        normalize_accounts(config.accounts)
        with self._operation("reconfigure"):
            run_id = self._next_run_id()
            self._store.save_config(run_id, config)
            self._append_run(
                run_id,
                "config",
                audit.sha256_text("config\x1e" + config.fingerprint()),
                comment=comment,
            )
        self._cfg = self._store.load_config()[1]
        return run_id
