"""Kernel output (int64 units) -> the contract's result tables (Decimal), and the check list.

This is where settings that are not arithmetic come in: item methods per row, ledger accounts,
voucher detail, ids. Every table is conformed to its schema in ``invclose.schemas``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl

from invclose.config import CloseConfig
from invclose.errors import MissingAccountError
from invclose.hashing import row_hashes
from invclose.kernel.accounts import fill_accounts
from invclose.kernel.money import from_cents, from_micro, mul_div_round, to_cents
from invclose.kernel.pipeline import KernelOutput
from invclose.kernel.vouchers import voucher_lines
from invclose.opening import OpeningState
from invclose.result import CloseResult
from invclose.schemas import conform, input_schema


def resolve_items(
    frame: pl.DataFrame, items: pl.DataFrame | None, cfg: CloseConfig
) -> pl.DataFrame:
    """Add each row's ``method``, ``incl_phys`` and ``item_group``: the item table wins."""
    default_method = pl.lit(str(cfg.method))
    default_phys = pl.lit(cfg.include_physical_value)
    if items is None or items.is_empty():
        return frame.with_columns(
            method=default_method, incl_phys=default_phys, item_group=pl.lit(None, pl.String)
        )
    per_item = (
        items.sort(["item_id", "valid_from"], nulls_last=False)
        .group_by("item_id", maintain_order=True)
        .agg(
            pl.col("method").drop_nulls().first().alias("item_method"),
            pl.col("include_physical_value").drop_nulls().first().alias("item_phys"),
            pl.col("item_group").drop_nulls().first(),
        )
    )
    return (
        frame.join(per_item, on="item_id", how="left")
        .with_columns(
            method=pl.coalesce("item_method", default_method),
            incl_phys=pl.coalesce("item_phys", default_phys),
        )
        .drop("item_method", "item_phys")
    )


def _adjustments_cents(output: KernelOutput, accounts: pl.DataFrame | None) -> pl.DataFrame:
    adjusted = output.rows.filter(pl.col("adjustment") != 0).sort("pos")
    return fill_accounts(adjusted, accounts)


def _missing_accounts(adjusted: pl.DataFrame) -> pl.DataFrame:
    return adjusted.filter(
        pl.col("inventory_account").is_null() | pl.col("offset_account").is_null()
    )


def _missing_message(missing: pl.DataFrame) -> str:
    keys = (
        missing.select("kind", "item_group").unique().sort(["kind", "item_group"], nulls_last=True)
    )
    key_text = "; ".join(f"kind={k!r} item_group={g!r}" for k, g in keys.iter_rows())
    listed = ", ".join(missing["txn_id"].head(20).to_list())
    more = f" ... and {missing.height - 20} more" if missing.height > 20 else ""
    return (
        f"{missing.height} transaction(s) must post an adjustment but have no inventory_account "
        f"or offset_account, and the accounts mapping has no row for them: {listed}{more}. "
        f"Missing mapping keys: {key_text}. Fill the columns on the transactions or pass "
        "accounts= with a row for these keys (a null kind or item_group matches any)."
    )


def assemble_result(
    output: KernelOutput,
    cfg: CloseConfig,
    closing_date: dt.date,
    run_id: str,
    state: OpeningState | None,
    *,
    run_kind: str,
    accounts: pl.DataFrame | None,
) -> CloseResult:
    """Build the ``CloseResult`` of one run; raise if an adjusted row has no account."""
    dims = list(cfg.dims)
    settle = run_kind == "close"
    adjusted = _adjustments_cents(output, accounts)
    missing = _missing_accounts(adjusted)
    if not missing.is_empty():
        failures = missing.select(
            "txn_id", "kind", "item_group", "inventory_account", "offset_account"
        )
        raise MissingAccountError(_missing_message(missing), failures)

    with_id = pl.lit(run_id).alias("close_id")
    adjustments = adjusted.select(
        with_id,
        "txn_id",
        "item_id",
        *dims,
        "item_group",
        "kind",
        "status",
        "date",
        "qty",
        posted_amount=from_cents(pl.col("carried0")),
        settled_amount=from_cents(pl.col("carried1")),
        adjustment=from_cents(pl.col("adjustment")),
        cost_delta=from_cents(pl.col("cost_delta")),
        adjustment_date=pl.lit(closing_date),
        inventory_account=pl.col("inventory_account"),
        offset_account=pl.col("offset_account"),
        adjusted_against=pl.col("adjusted_against"),
        order_id=pl.col("order_id"),
    )
    lines = voucher_lines(adjusted, cfg.voucher_detail, dims, run_id)  # type: ignore[arg-type]
    vouchers = lines.with_columns(
        with_id,
        posting_date=pl.lit(closing_date),
        debit=from_cents(pl.col("debit")),
        credit=from_cents(pl.col("credit")),
    )

    rows = output.rows
    row_keys = rows.select(pl.col("pos").alias("receipt_pos"), "item_id", *dims)
    pieces = output.pieces.sort(["receipt_pos", "phase", "rank"])
    real = pieces.filter(pl.col("real")) if settle else pieces.clear()
    settlements = (
        real.join(row_keys, on="receipt_pos", how="left")
        .sort(["issue_pos", "receipt_pos", "phase", "rank"])
        .select(
            with_id,
            "issue_txn_id",
            "receipt_txn_id",
            "item_id",
            *dims,
            settlement_date=pl.lit(closing_date),
            qty=from_micro(pl.col("qty")),
            amount=from_cents(pl.col("amount")),
            principle=pl.col("principle"),
        )
    )
    cost_flow = _cost_flow(output, rows, pieces, with_id)
    log = output.log.with_columns(
        with_id, qty=from_micro(pl.col("qty")), amount=from_cents(pl.col("amount"))
    )
    balances = output.balances.select(
        with_id,
        "item_id",
        *dims,
        "method",
        qty=from_micro(pl.col("qty")),
        value=from_cents(pl.col("value")),
        open_receipts=pl.col("open_receipts"),
        unit_cost=from_micro(pl.col("unit_cost_micro")),
        physical_qty=from_micro(pl.col("physical_qty")),
        physical_value=from_cents(pl.col("physical_value")),
    )
    columns = list(input_schema(dims))
    scoped = rows.filter(pl.col("in_scope")).sort("pos")
    if not settle:
        scoped = scoped.filter(~pl.col("is_virtual_new"))
    scoped = _hash_virtual_rows(scoped, columns)
    # A row is closed when nothing is left of it; an on-hand row of quantity 0 that still
    # carries value (a revaluation's remainder) stays open.
    closed_now = (
        (pl.col("fin") & (pl.col("q1") == 0) & (pl.col("v1") == 0)) if settle else pl.lit(False)
    )
    open_items = scoped.filter(~closed_now).select(
        with_id,
        *columns,
        open_qty=from_micro(pl.col("q1")),
        open_value=from_cents(pl.col("v1")),
        carried_value=from_cents(pl.col("carried1")),
        is_virtual=pl.col("txn_id").str.starts_with("~"),
    )
    newly_closed = scoped.filter(closed_now).select("txn_id", "row_hash", closed_by=pl.lit(run_id))
    previous = (
        state.closed_items.select("txn_id", "row_hash", "closed_by")
        if state is not None
        else newly_closed.clear()
    )
    closed_items = pl.concat([previous, newly_closed]).sort("txn_id").with_columns(with_id)

    tables = {
        "settlements": settlements,
        "adjustments": adjustments,
        "vouchers": vouchers,
        "log": log.sort(["code", "item_id", "txn_id"], nulls_last=True),
        "balances": balances,
        "open_items": open_items,
        "closed_items": closed_items,
        "cost_flow": cost_flow,
    }
    lock = closing_date if settle else (state.lock_date if state is not None else None)
    return CloseResult(
        close_id=run_id,
        closing_date=closing_date,
        run_kind=run_kind,
        dimensions=tuple(dims),
        config_fingerprint=cfg.fingerprint(),
        lock_date=lock,
        **{name: conform(table, name, dims) for name, table in tables.items()},
    )


def _cost_flow(
    output: KernelOutput, rows: pl.DataFrame, pieces: pl.DataFrame, with_id: pl.Expr
) -> pl.DataFrame:
    """Lineage edges: receipt -> issue per piece, issue -> derived receipt, closing pairs."""
    ids = rows.select("pos", "txn_id")
    settlement = pieces.sort(["issue_pos", "receipt_pos", "phase", "rank"]).select(
        from_txn_id=pl.col("receipt_txn_id"),
        to_txn_id=pl.col("issue_txn_id"),
        qty=pl.col("qty"),
        amount=pl.col("amount"),
        kind=pl.lit("settlement"),
    )
    feeds = (
        output.flows.filter(pl.col("kind").is_in(["transfer", "production"]))
        .join(ids.rename({"pos": "issue_pos", "txn_id": "from_txn_id"}), on="issue_pos")
        .join(ids.rename({"pos": "receipt_pos", "txn_id": "to_txn_id"}), on="receipt_pos")
        .sort(["issue_pos", "receipt_pos"])
        .select("from_txn_id", "to_txn_id", "qty", "amount", "kind")
    )
    closing_issues = rows.filter(pl.col("is_virtual_new") & ~pl.col("is_receipt"))
    closing = closing_issues.join(
        ids.rename({"pos": "receipt_pos", "txn_id": "to_txn_id"}),
        left_on=pl.col("pos") + 1,
        right_on="receipt_pos",
    ).select(
        from_txn_id=pl.col("txn_id"),
        to_txn_id=pl.col("to_txn_id"),
        qty=pl.col("q_abs"),
        amount=pl.col("w_abs"),
        kind=pl.lit("transfer"),
    )
    edges = pl.concat([settlement, feeds, closing], how="vertical_relaxed")
    return edges.select(
        with_id,
        "from_txn_id",
        "to_txn_id",
        qty=from_micro(pl.col("qty")),
        amount=from_cents(pl.col("amount")),
        kind="kind",
    )


def _hash_virtual_rows(rows: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Virtual rows created by the run get the row hash of their input columns."""
    missing = rows.filter(pl.col("row_hash").is_null())
    if missing.is_empty():
        return rows
    hashed = missing.with_columns(row_hash=row_hashes(missing, columns))
    return pl.concat([rows.filter(pl.col("row_hash").is_not_null()), hashed]).sort("pos")


def _deviation_rows(output: KernelOutput, max_deviation: Decimal, dims: list[str]) -> pl.DataFrame:
    """Financial receipts dated <= D whose unit cost is far from their group's median."""
    receipts = output.rows.filter(
        pl.col("in_scope") & pl.col("fin") & pl.col("is_receipt") & (pl.col("q0") > 0)
    ).with_columns(unit=mul_div_round(to_cents(pl.col("amount")), pl.lit(10**10), to_cents_qty()))
    ranked = receipts.sort(["gid", "unit", "pos"]).with_columns(
        idx=pl.int_range(pl.len()).over("gid"), n=pl.len().over("gid")
    )
    medians = ranked.filter(pl.col("idx") == (pl.col("n") - 1) // 2).select(
        "gid", median=pl.col("unit")
    )
    num, den = max_deviation.as_integer_ratio()
    far = ranked.join(medians, on="gid").filter(
        (pl.col("unit") - pl.col("median")).abs() * den > pl.col("median").abs() * num
    )
    return far.select(
        "item_id",
        *dims,
        "txn_id",
        "order_id",
        level=pl.lit("warning"),
        code=pl.lit("cost_price_deviation"),
        qty=from_micro(pl.col("q0")),
        amount=from_cents(to_cents(pl.col("amount"))),
        message=pl.format(
            "receipt {}: unit cost {} differs from the group's median receipt unit cost {} by "
            "more than {}",
            pl.col("txn_id"),
            from_micro(pl.col("unit")).cast(pl.String),
            from_micro(pl.col("median")).cast(pl.String),
            pl.lit(str(max_deviation)),
        ),
    )


def to_cents_qty() -> pl.Expr:
    """The row's original quantity in micro-units (for unit costs of receipts)."""
    return (pl.col("qty") * 1_000_000).cast(pl.Int64)


def check_log(
    output: KernelOutput,
    cfg: CloseConfig,
    closing_date: dt.date,
    run_id: str,
    accounts: pl.DataFrame | None,
) -> pl.DataFrame:
    """The pre-close list in the columns of ``log``."""
    dims = list(cfg.dims)
    adjusted = _adjustments_cents(output, accounts)
    missing = _missing_accounts(adjusted).select(
        "item_id",
        *dims,
        "txn_id",
        "order_id",
        level=pl.lit("error"),
        code=pl.lit("missing_account"),
        qty=from_micro(pl.col("q0").abs()),
        amount=from_cents(pl.col("adjustment")),
        message=pl.format(
            "transaction {} (kind {}, item group {}) would post an adjustment but has no "
            "inventory or offset account and no accounts-mapping row",
            pl.col("txn_id"),
            pl.col("kind").fill_null("null"),
            pl.col("item_group").fill_null("null"),
        ),
    )
    log = output.log.with_columns(
        qty=from_micro(pl.col("qty")), amount=from_cents(pl.col("amount"))
    )
    deviation = _deviation_rows(output, Decimal(str(cfg.max_deviation)), dims)
    combined = pl.concat(
        [
            conform(t.with_columns(close_id=pl.lit(run_id)), "log", dims)
            for t in (log, missing, deviation)
        ]
    )
    return combined.sort(["level", "code", "item_id", "txn_id"], nulls_last=True)
