"""Kernel output (int64 units) -> the contract's result tables (Decimal), and the check list.

This is where settings that are not arithmetic come in: item methods per row, ledger accounts,
voucher detail, ids. Every table is conformed to its schema in ``invclose.schemas``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal

import polars as pl

from invclose.config import CloseConfig
from invclose.errors import MissingAccountError, first_named
from invclose.hashing import row_hashes
from invclose.kernel.accounts import fill_accounts
from invclose.kernel.money import from_cents, from_micro, mul_div_round, to_cents, to_micro
from invclose.kernel.pipeline import KernelOutput
from invclose.kernel.prepare import rows_at, sort_order
from invclose.kernel.virtual import CLOSING_PREFIX
from invclose.kernel.vouchers import voucher_ids, voucher_lines
from invclose.opening import OpeningState
from invclose.result import CloseResult
from invclose.schemas import VIRTUAL_PREFIX, conform, input_schema
from invclose.validate import normalize_items


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


def _adjusted_columns(dims: list[str]) -> list[str]:
    """Columns of an adjusted row that the adjustments, vouchers and checks read."""
    return [
        *("pos", "txn_id", "item_id", *dims, "item_group", "kind", "status", "date", "qty"),
        *("q0", "carried0", "carried1", "adjustment", "cost_delta"),
        *("inventory_account", "offset_account", "adjusted_against", "order_id"),
    ]


def log_order(dims: Sequence[str]) -> list[str]:
    """The columns ``log`` is sorted by, nulls last: a total order of its findings.

    Two findings of one item in different financial dimensions (a cycle through two sites,
    negative on-hand at two sites) differ only in a dimension, and two of one row only in
    their order or message; without them the order of such rows would be left to chance.

    >>> log_order(["site"])
    ['code', 'item_id', 'site', 'txn_id', 'order_id', 'message']
    """
    return ["code", "item_id", *dims, "txn_id", "order_id", "message"]


def unit_costs(frame: pl.DataFrame, items: pl.DataFrame | None) -> pl.DataFrame:
    """Standard cost active on each row's date, and the fallback cost (cents per unit)."""
    if items is None or items.is_empty():
        return frame.with_columns(
            std_cents=pl.lit(None, pl.Int64), fallback_cents=pl.lit(0, pl.Int64)
        )
    dated = (
        items.filter(pl.col("standard_cost").is_not_null())
        .select(
            "item_id",
            valid_from=pl.col("valid_from").fill_null(dt.date.min),
            std_cents=to_cents(pl.col("standard_cost")),
        )
        .sort("item_id", "valid_from")
    )
    defaults = items.group_by("item_id").agg(
        default_cents=to_cents(pl.col("default_cost")).drop_nulls().first()
    )
    with_std = (
        frame.with_row_index("__row")
        .sort("date")
        .join_asof(
            dated.sort("valid_from"),
            left_on="date",
            right_on="valid_from",
            by="item_id",
            check_sortedness=False,
        )
        .sort("__row")
        .drop("__row", "valid_from")
    )
    return (
        with_std.join(defaults, on="item_id", how="left")
        .with_columns(fallback_cents=pl.coalesce("std_cents", "default_cents", pl.lit(0, pl.Int64)))
        .drop("default_cents")
    )


def _in_pos_order(rows: pl.DataFrame, keep: pl.Expr, columns: list[str]) -> pl.DataFrame:
    """``columns`` of the rows where ``keep`` holds, in ``pos`` order.

    Same as ``rows.filter(keep).sort("pos").select(columns)`` (``pos`` is unique), but only
    the wanted columns are filtered or gathered, and rows already in ``pos`` order (a
    close without derived levels or virtual rows) are not sorted.
    """
    narrow = rows.select(columns)
    if rows["pos"].is_sorted():
        return narrow.filter(rows.select(keep).to_series())
    row = pl.int_range(pl.len(), dtype=pl.get_index_type())
    order = rows.select(row.filter(keep).sort_by(pl.col("pos").filter(keep))).to_series()
    return _gather(narrow, order)


def _gather(frame: pl.DataFrame, rows: pl.Series) -> pl.DataFrame:
    """``frame[rows]``, rechunked first when most of its rows are taken.

    A gather from one chunk per column is several times faster (string columns especially);
    rechunking copies every row, which only pays when most of them are gathered anyway.
    """
    if 4 * rows.len() >= 3 * frame.height:
        frame = frame.rechunk()
    return frame[rows]


def _open_and_closed(
    rows: pl.DataFrame, dims: list[str], *, settle: bool
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The in-scope rows still open (``open_items`` columns) and those closed now, by pos.

    Each part gathers only its own columns: the closed rows need just their id, their input
    row (``HASH_ROW``, for the hash added by :func:`finish_result`) and, for virtual rows
    (no input row), the hash of their columns.
    """
    columns = list(input_schema(dims))
    keep = pl.col("in_scope") if settle else pl.col("in_scope") & ~pl.col("is_virtual_new")
    # A row is closed when nothing is left of it; an on-hand row of quantity 0 that still
    # carries value (a revaluation's remainder) stays open, and so does an order's issue with
    # quantity no receipt has taken yet (its change waits for them, close-semantics §9.1).
    # So does a transit issue while its group's receipts hold units (the next close must see
    # the pair to keep their rest for the order, close-semantics §9.2).
    waiting = ~pl.col("is_receipt") & (
        (pl.col("unfed1").fill_null(0) > 0) | pl.col("holds_transit")
    )
    closed_now = (
        (pl.col("fin") & (pl.col("q1") == 0) & (pl.col("v1") == 0) & ~waiting)
        if settle
        else pl.lit(False)
    )
    still_open = _in_pos_order(
        rows, keep & ~closed_now, [*columns, "q1", "v1", "carried1", "unfed1", "pending1"]
    )
    open_items = still_open.select(
        *columns,
        open_qty=from_micro(pl.col("q1")),
        open_value=from_cents(pl.col("v1")),
        carried_value=from_cents(pl.col("carried1")),
        is_virtual=pl.col("txn_id").str.starts_with("~"),
        unfed_qty=from_micro(pl.col("unfed1")),
        unfed_change=from_cents(pl.col("pending1")),
    )
    closed = _in_pos_order(rows, keep & closed_now, ["txn_id", HASH_ROW])
    virtual = _in_pos_order(rows, keep & closed_now & pl.col(HASH_ROW).is_null(), columns)
    return open_items, _with_virtual_hashes(closed, virtual, columns)


def _sorted_by_id(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame.sort("txn_id")``, sorting integer keys instead of strings where they exist.

    Virtual ids (``~`` and a long label) and input ids are ordered apart, each on its own
    key. When every input id sorts before every virtual one, as usual, the two orders just
    follow each other; otherwise, or with a repeated id, the strings are sorted.
    """
    ids = frame["txn_id"]
    if ids.null_count():
        return frame.sort("txn_id")
    virtual = ids.str.starts_with(VIRTUAL_PREFIX)
    orders = []
    for rows in ((~virtual).arg_true(), virtual.arg_true()):
        order = _distinct_order(ids.gather(rows))
        if order is None:
            return frame.sort("txn_id")
        orders.append(rows.gather(order))
    last_input, first_virtual = ids.gather(orders[0].tail(1)), ids.gather(orders[1].head(1))
    if last_input.len() and first_virtual.len() and last_input.item() >= first_virtual.item():
        return frame.sort("txn_id")
    return _gather(frame, pl.concat(orders))


def _distinct_order(ids: pl.Series) -> pl.Series | None:
    """The permutation sorting the non-null strings ``ids``; ``None`` if one repeats.

    Every id lies between the smallest and the largest, so all share their common prefix.
    When what follows it fits in 8 bytes (ASCII, no NUL byte), zero-padded big-endian it is a
    ``UInt64`` that orders exactly like the string (a shorter id's padding sorts before any
    byte), and an integer sort is several times faster than a string sort.
    """
    if ids.len() < 2:
        return ids.arg_sort()
    low, high = str(ids.min()), str(ids.max())
    common = next((i for i, (a, b) in enumerate(zip(low, high, strict=False)) if a != b), len(low))
    text = pl.col("id")
    ascii_only, longest, nul = (
        ids.to_frame("id")
        .select(
            ascii=(text.str.len_bytes() == text.str.len_chars()).all(),
            longest=text.str.len_bytes().max(),
            nul=text.str.contains("\x00", literal=True).any(),
        )
        .row(0)
    )
    key = ids
    if ascii_only and not nul and longest - common <= 8:
        rest = text.str.slice(common).str.pad_end(8, "\x00").cast(pl.Binary)
        packed = rest.bin.reinterpret(dtype=pl.UInt64, endianness="big")
        key = ids.to_frame("id").select(packed).to_series()
    order = key.arg_sort()
    ranked = key.gather(order)
    if (ranked.slice(1) == ranked.slice(0, ranked.len() - 1)).any():
        return None
    return order


#: For the ledger: the accounts each of the given ``txn_id`` values was posted to, as a frame
#: of ``txn_id``, ``inventory_account`` and ``offset_account`` (nulls where none).
PostedAccounts = Callable[[pl.Series], pl.DataFrame]


def standard_not_revalued(
    output: KernelOutput, items: pl.DataFrame | None, closing_date: dt.date, dims: list[str]
) -> pl.DataFrame:
    """Warnings (``log`` rows in kernel units) for standard groups whose financial on-hand is
    not valued at the standard cost in force on the closing date.

    Every row of a standard item posts at standard, and a new standard cost is revalued by a
    ``revaluation`` row (close-semantics §3.7); when none was posted (no posting between the
    change and a close), the books keep the old cost and nothing else would say so. Each
    row's amount is rounded to the cent on its own, so up to half a cent per row is rounding,
    not a missing revaluation. An on-hand row carried from the opening (``~onhand``) stands
    for the rows of earlier closes: it counts with the rounding it carries, its value's
    difference to its quantity at the standard in force on its date (the opening's closing
    date, where that close checked it the same way), instead of half a cent.
    """
    if items is None or "standard_cost" not in items.columns:
        return output.log.clear()
    standard_rows = output.rows.filter(
        pl.col("in_scope") & pl.col("fin") & (pl.col("method") == "standard")
    )
    carried = pl.col("from_opening") & pl.col("txn_id").str.starts_with("~")
    onhand = unit_costs(
        standard_rows.filter(carried).select("gid", "item_id", "date", "q0", "v0"), items
    ).select(
        "gid",
        residue=(
            mul_div_round(pl.col("q0"), pl.col("std_cents"), pl.lit(10**6), wide_result=True)
            - pl.col("v0")
        )
        .abs()
        .cast(pl.Int64, strict=False)
        .fill_null(0),
    )
    counted = (
        standard_rows.lazy()
        .filter(~carried)
        .group_by("gid")
        .agg(n=pl.len().cast(pl.Int64))
        .join(
            onhand.lazy().group_by("gid").agg(pl.col("residue").sum()),
            on="gid",
            how="full",
            coalesce=True,
        )
        # Twice the cents allowed, less one: half a cent per new row, the carried residue.
        .select("gid", n=pl.col("n").fill_null(0) + 2 * pl.col("residue").fill_null(0))
        .collect()
    )
    expected = mul_div_round(pl.col("qty"), pl.col("std"), pl.lit(10**6), wide_result=True)
    standard = output.balances.filter(pl.col("method") == "standard")
    groups = (
        unit_costs(standard.with_columns(date=pl.lit(closing_date)), items)
        .filter(pl.col("std_cents").is_not_null())
        .rename({"std_cents": "std"})
        .join(counted, on="gid", how="left")
        .with_columns(diff=(expected - pl.col("value")).cast(pl.Int64, strict=False))
        .filter(2 * pl.col("diff").abs() > pl.col("n").fill_null(0) + 1)
    )
    return groups.select(
        level=pl.lit("warning"),
        code=pl.lit("standard_not_revalued"),
        item_id=pl.col("item_id"),
        **{d: pl.col(d) for d in dims},
        txn_id=pl.lit(None, pl.String),
        qty=pl.col("qty"),
        amount=pl.col("diff"),
        order_id=pl.lit(None, pl.String),
        message=pl.format(
            "the financial on-hand {} of this standard item is valued {}, not at the standard "
            "cost {} in force on the closing date: a cost change was not revalued; post its "
            "revaluation row (kind revaluation, qty 0, amount {}), e.g. with post_costs",
            from_micro(pl.col("qty")).cast(pl.String),
            from_cents(pl.col("value")).cast(pl.String),
            from_cents(pl.col("std")).cast(pl.String),
            from_cents(pl.col("diff")).cast(pl.String),
        ),
    ).select(output.log.columns)


def _warnings(output: KernelOutput, found: pl.DataFrame) -> pl.DataFrame:
    """``found`` (``code``, ``message``, optionally ``item_id``) as warning rows of the log."""
    return pl.concat(
        [output.log.clear(), found.with_columns(level=pl.lit("warning"))], how="diagonal_relaxed"
    )


def _nothing_to_close(output: KernelOutput) -> pl.DataFrame:
    """A warning when no row of the run is dated on or before the closing date (new or open):
    an empty nightly extract is more often a failure upstream than an empty month, and the
    close locks its date all the same."""
    if output.rows.select(pl.col("in_scope").any()).item():
        return output.log.clear()
    message = (
        "nothing to close: no transaction dated on or before the closing date is new or open "
        "(in the input or the opening); the date is locked all the same: if this period's "
        "transactions should be there, check the input"
    )
    return _warnings(output, pl.DataFrame({"code": ["nothing_to_close"], "message": [message]}))


def _dimension_spellings(output: KernelOutput, dims: list[str]) -> pl.DataFrame:
    """Warnings for an item's values of a financial dimension that differ only in surrounding
    spaces or in case, or are null beside empty: each is a financial dimension of its own,
    which is rarely what the extract meant (a site "S1 " closed apart from "S1"). Per item,
    so that a batched close of whole items finds the same."""
    parts = []
    for dim in dims:
        values = output.balances.select("item_id", pl.col(dim).cast(pl.String)).unique()
        spelt = (
            values.with_columns(norm=pl.col(dim).fill_null("").str.strip_chars().str.to_lowercase())
            .group_by("item_id", "norm")
            .agg(shown=pl.col(dim).sort(nulls_last=True), n=pl.len())
            .filter(pl.col("n") > 1)
        )
        if spelt.is_empty():
            continue
        shown = pl.col("shown").list.eval(
            pl.when(pl.element().is_null())
            .then(pl.lit("null"))
            .otherwise(pl.lit("'") + pl.element() + pl.lit("'"))
        )
        parts.append(
            spelt.select(
                code=pl.lit("dimension_spellings"),
                item_id="item_id",
                message=pl.format(
                    "item {}: {} values {} are {} financial dimensions that differ only in "
                    "spaces, case or null against empty; if they are one, correct the extract",
                    pl.col("item_id"),
                    pl.lit(dim),
                    shown.list.join(", "),
                    pl.col("n"),
                ),
            )
        )
    if not parts:
        return output.log.clear()
    return _warnings(output, pl.concat(parts).sort("item_id", "message"))


def _spelling_free(column: str) -> pl.Expr:
    """``column`` without surrounding blanks, zero-width characters, case and the leading
    zeros of a number (``"00042"`` read back as the integer 42): how two spellings of one
    key are told apart from two keys."""
    return (
        pl.col(column)
        .str.replace_all("[\u200b\u200c\u200d\u2060\ufeff]", "")
        .str.strip_chars()
        .str.to_lowercase()
        .str.replace(r"^0+([0-9])", "${1}")
    )


def _item_table_spellings(
    output: KernelOutput, items: pl.DataFrame | None, method: str
) -> pl.DataFrame:
    """Warnings for items closed without a row of the item table while a row names them but
    for surrounding spaces, zero-width characters or case ("IT1 " for "IT1"): keys are
    compared as given, so the item was closed with the defaults, which is rarely what the
    table meant. Per item, so that a batched close of whole items finds the same."""
    if items is None or items.is_empty():
        return output.log.clear()
    listed = items.select("item_id").unique()
    closed = output.balances.select("item_id").unique().join(listed, on="item_id", how="anti")
    if closed.is_empty():
        return output.log.clear()
    # Every key of the table, not only those no item of this run has: which other items a
    # run (a batch, a month) holds must not change the warnings of this one.
    near = (
        closed.with_columns(norm=_spelling_free("item_id"))
        .join(
            listed.select(pl.col("item_id").alias("listed"), norm=_spelling_free("item_id")),
            on="norm",
        )
        .group_by("item_id")
        .agg(pl.col("listed").sort())
    )
    if near.is_empty():
        return output.log.clear()
    quoted = pl.col("listed").list.eval(pl.lit("'") + pl.element() + pl.lit("'")).list.join(", ")
    found = near.sort("item_id").select(
        code=pl.lit("item_table_spellings"),
        item_id="item_id",
        message=pl.format(
            "item '{}' has no row in the item table, which names {}: a spelling that differs "
            "only in spaces, zero-width characters, case or leading zeros, compared as given "
            "(an item_id column read as integers loses its zeros); the item was "
            "closed with the defaults (method {}). If they are one item, correct the item "
            "table or the extract",
            pl.col("item_id"),
            quoted,
            pl.lit(method),
        ),
    )
    return _warnings(output, found)


def _methods_changed(
    output: KernelOutput, state: OpeningState | None, dims: list[str]
) -> pl.DataFrame:
    """Warnings for groups closed under another method than the opening's: a change of
    valuation method between closes is allowed (but for moving average, §3.8), and rarely
    meant when it happens (an item table left out of February's close closes every item
    under the default method). Per group, so that a batched close finds the same."""
    if state is None or state.methods is None or state.methods.is_empty():
        return output.log.clear()
    keys = ["item_id", *dims]
    before = state.methods.select(*keys, pl.col("method").alias("before"))
    changed = (
        output.balances.select(*keys, "method")
        .join(before, on=keys, how="inner", nulls_equal=True)
        .filter(pl.col("method") != pl.col("before"))
        .sort(keys, nulls_last=True)
    )
    if changed.is_empty():
        return output.log.clear()
    where = [pl.lit(f"{d} ") + pl.col(d).cast(pl.String).fill_null("null") for d in dims]
    group = (
        pl.concat_str([pl.col("item_id"), *where], separator=", ") if dims else pl.col("item_id")
    )
    found = changed.select(
        *keys,
        code=pl.lit("method_changed"),
        message=pl.format(
            "{}: closed under {}, the opening under {}; a change of valuation method between "
            "closes (an item table left out or changed?); if it is meant, nothing to do",
            group,
            pl.col("method"),
            pl.col("before"),
        ),
    )
    return _warnings(output, found)


def _run_log(
    output: KernelOutput,
    cfg: CloseConfig,
    closing_date: dt.date,
    dims: list[str],
    state: OpeningState | None = None,
) -> pl.DataFrame:
    """The kernel's log with the standard groups not revalued, quantities and money decimal."""
    items = normalize_items(cfg.items)
    drift = standard_not_revalued(output, items, closing_date, dims)
    parts = [
        output.log,
        drift,
        _nothing_to_close(output),
        _dimension_spellings(output, dims),
        _item_table_spellings(output, items, str(cfg.method)),
        _methods_changed(output, state, dims),
    ]
    return pl.concat(parts, how="vertical_relaxed").with_columns(
        qty=from_micro(pl.col("qty")), amount=from_cents(pl.col("amount"))
    )


def _adjustments_cents(
    output: KernelOutput,
    accounts: pl.DataFrame | None,
    dims: list[str],
    posted: PostedAccounts | None = None,
) -> pl.DataFrame:
    """Rows with an adjustment, in ``pos`` order, with their accounts filled.

    An adjustment corrects the accounts that hold the row's value: those it was posted to
    when ``posted`` knows them (a ledger posted it under the mapping in force then, which
    ``reconfigure`` may have changed since), else the row's own, else the mapping's.
    """
    adjusted = _in_pos_order(output.rows, pl.col("adjustment") != 0, _adjusted_columns(dims))
    if posted is not None and adjusted.height:
        known = posted(adjusted["txn_id"]).select(
            "txn_id",
            pl.col("inventory_account").alias("__posted_inventory"),
            pl.col("offset_account").alias("__posted_offset"),
        )
        adjusted = (
            adjusted.join(known, on="txn_id", how="left", maintain_order="left")
            .with_columns(
                inventory_account=pl.coalesce("__posted_inventory", "inventory_account"),
                offset_account=pl.coalesce("__posted_offset", "offset_account"),
            )
            .drop("__posted_inventory", "__posted_offset")
        )
    return fill_accounts(adjusted, accounts)


def _missing_accounts(adjusted: pl.DataFrame) -> pl.DataFrame:
    return adjusted.filter(
        pl.col("inventory_account").is_null() | pl.col("offset_account").is_null()
    )


def missing_account_message(missing: pl.DataFrame) -> str:
    """The message of a :class:`MissingAccountError` for ``missing`` (txn_id, kind, item_group)."""
    keys = (
        missing.select("kind", "item_group").unique().sort(["kind", "item_group"], nulls_last=True)
    )
    key_text = "; ".join(f"kind={k!r} item_group={g!r}" for k, g in keys.iter_rows())
    listed = first_named(missing["txn_id"])
    return (
        f"{missing.height} transaction(s) must post an adjustment but have no inventory_account "
        f"or offset_account, and the accounts mapping gives none (no matching row, or one "
        f"that leaves the account empty): {listed}. "
        f"Missing mapping keys: {key_text}. Fill the columns on the transactions or pass "
        "accounts= with a row for these keys (a null kind or item_group matches any)."
    )


def combined_missing_accounts(errors: Sequence[MissingAccountError]) -> MissingAccountError:
    """One error naming the rows without accounts of every part or batch of a run."""
    tables = [e.failures for e in errors if e.failures is not None]
    if not tables:
        return errors[0]
    rows = pl.concat(tables, how="vertical_relaxed")
    return MissingAccountError(missing_account_message(rows), rows)


#: The column of kernel rows holding their input row's index into the row hashes that
#: :func:`finish_result` receives (null on virtual rows, which have no input row).
HASH_ROW = "_hash_row"
#: The closed items that this run closes (``closed_by`` is its id, not yet known in a draft).
_NEW = "_closed_now"


@dataclass(frozen=True)
class Draft:
    """A run's result tables before its id and its input rows' hashes are known.

    Every table lacks ``close_id``; voucher lines hold their voucher's number (``voucher_no``)
    instead of its id; the closed items of this run carry their input row (``HASH_ROW``)
    instead of its hash. ``invclose.close`` builds the draft while the row hashes (and from
    them the id) are computed on another thread; :func:`finish_result` completes it.
    """

    tables: dict[str, pl.DataFrame]
    closing_date: dt.date
    run_kind: str
    dimensions: tuple[str, ...]
    config_fingerprint: str
    lock_date: dt.date | None
    #: Rows of the three runs of ``cost_flow``: settlement edges, order feeds, closing pairs
    #: (each in its own order; :mod:`invclose.parts` joins the drafts of parts run by run).
    flow_sections: tuple[int, int, int] = (0, 0, 0)


def assemble_draft(
    output: KernelOutput,
    cfg: CloseConfig,
    closing_date: dt.date,
    state: OpeningState | None,
    *,
    run_kind: str,
    accounts: pl.DataFrame | None,
    posted_accounts: PostedAccounts | None = None,
    whole: bool = True,
) -> Draft:
    """Build the result tables of one run but its id; raise if an adjusted row has no account.

    ``output.rows`` must carry ``HASH_ROW``; ``posted_accounts`` (a ledger's) gives the
    accounts rows were posted to, which their adjustments correct. A draft of one part of
    a run (``whole=False``, see :mod:`invclose.parts`) holds only the rows it closes in
    ``closed_items``, unsorted: the opening's closed rows are added, and all sorted, once.
    """
    dims = list(cfg.dims)
    settle = run_kind == "close"
    # The open and closed items read only the kernel's rows; they are built on a second
    # thread while this one makes the other tables (most steps here keep one core busy, and
    # the hash thread has mostly finished by then). Same tables whatever the thread count.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="invclose-items") as pool:
        items = pool.submit(_item_tables, output.rows, dims, state, settle=settle, whole=whole)
        tables, flow_sections = _other_tables(
            output,
            cfg,
            closing_date,
            accounts,
            dims,
            settle=settle,
            posted=posted_accounts,
            state=state,
        )
        open_items, closed_items = items.result()
    lock = closing_date if settle else (state.lock_date if state is not None else None)
    return Draft(
        tables={**tables, "open_items": open_items, "closed_items": closed_items},
        closing_date=closing_date,
        run_kind=run_kind,
        dimensions=tuple(dims),
        config_fingerprint=cfg.fingerprint(),
        lock_date=lock,
        flow_sections=flow_sections,
    )


def _item_tables(
    rows: pl.DataFrame,
    dims: list[str],
    state: OpeningState | None,
    *,
    settle: bool,
    whole: bool = True,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``open_items`` and ``closed_items`` (the opening's closed items and this run's; this
    run's alone, unsorted, unless ``whole``)."""
    open_items, newly_closed = _open_and_closed(rows, dims, settle=settle)
    closed_now = newly_closed.with_columns(
        closed_by=pl.lit(None, pl.String), **{_NEW: pl.lit(True)}
    )
    if not whole:
        return open_items, closed_now
    return open_items, closed_items_draft(closed_now, state)


def closed_items_draft(closed_now: pl.DataFrame, state: OpeningState | None) -> pl.DataFrame:
    """A draft's ``closed_items``: the rows this run closes (``closed_now``, a part's draft
    table or several concatenated) and the opening's closed rows, sorted by ``txn_id``."""
    closed_items = closed_now
    if state is not None:
        previous = state.closed_items.select(
            "txn_id",
            "row_hash",
            "closed_by",
            **{HASH_ROW: pl.lit(None, pl.get_index_type()), _NEW: pl.lit(False)},
        )
        closed_items = pl.concat([previous, closed_items.select(previous.columns)])
    return _sorted_by_id(closed_items)


def _other_tables(
    output: KernelOutput,
    cfg: CloseConfig,
    closing_date: dt.date,
    accounts: pl.DataFrame | None,
    dims: list[str],
    *,
    settle: bool,
    posted: PostedAccounts | None,
    state: OpeningState | None = None,
) -> tuple[dict[str, pl.DataFrame], tuple[int, int, int]]:
    """Every table but the open and closed items, and the rows of ``cost_flow`` 's three runs;
    raise if an adjusted row has no account."""
    adjusted = _adjustments_cents(output, accounts, dims, posted)
    missing = _missing_accounts(adjusted)
    if not missing.is_empty():
        failures = missing.select(
            "txn_id", "kind", "item_group", "inventory_account", "offset_account"
        )
        raise MissingAccountError(missing_account_message(missing), failures)

    adjustments = adjusted.select(
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
    # Voucher ids are "<close_id>-V<n>": the lines keep n until finish_result.
    lines = voucher_lines(adjusted, cfg.voucher_detail, dims, None)  # type: ignore[arg-type]
    vouchers = lines.with_columns(
        posting_date=pl.lit(closing_date),
        debit=from_cents(pl.col("debit")),
        credit=from_cents(pl.col("credit")),
    )

    rows = output.rows
    ordered = _pieces_in_order(output.pieces)
    real = ordered.filter(pl.col("real")) if settle else ordered.clear()
    # The receipt's item and dimensions: a lookup by position, not a join.
    receipt_keys = _gather(rows.select("item_id", *dims), rows_at(rows["pos"], real["receipt_pos"]))
    settlements = pl.concat([real, receipt_keys], how="horizontal").select(
        "issue_txn_id",
        "receipt_txn_id",
        "item_id",
        *dims,
        settlement_date=pl.lit(closing_date),
        qty=from_micro(pl.col("qty")),
        amount=from_cents(pl.col("amount")),
        principle=pl.col("principle"),
    )
    cost_flow, flow_sections = _cost_flow(output, rows, ordered)
    log = _run_log(output, cfg, closing_date, dims, state)
    balances = output.balances.select(
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
    return {
        "settlements": settlements,
        "adjustments": adjustments,
        "vouchers": vouchers,
        "log": log.sort(log_order(dims), nulls_last=True, maintain_order=True),
        "balances": balances,
        "cost_flow": cost_flow,
    }, flow_sections


def finish_result(draft: Draft, run_id: str, hashes: pl.Series) -> CloseResult:
    """The ``CloseResult`` of ``draft``: its id on every table, the input rows' hashes.

    ``hashes`` holds the row hash of each input row, indexed by ``HASH_ROW``.
    """
    dims = list(draft.dimensions)
    with_id = pl.lit(run_id).alias("close_id")
    tables = {name: table.with_columns(with_id) for name, table in draft.tables.items()}
    vouchers = tables["vouchers"]
    tables["vouchers"] = vouchers.with_columns(voucher_ids(vouchers["voucher_no"], run_id)).drop(
        "voucher_no"
    )
    closed = tables["closed_items"]
    tables["closed_items"] = closed.with_columns(
        row_hash=pl.coalesce(pl.col("row_hash"), hashes.gather(closed[HASH_ROW])),
        closed_by=pl.when(pl.col(_NEW)).then(pl.lit(run_id)).otherwise(pl.col("closed_by")),
    ).drop(HASH_ROW, _NEW)
    return CloseResult(
        close_id=run_id,
        closing_date=draft.closing_date,
        run_kind=draft.run_kind,
        dimensions=draft.dimensions,
        config_fingerprint=draft.config_fingerprint,
        lock_date=draft.lock_date,
        **{name: conform(table, name, dims) for name, table in tables.items()},
    )


#: A total order of pieces (a receipt's pieces are unique by phase and rank).
_PIECE_ORDER = ["issue_pos", "receipt_pos", "phase", "rank"]
#: Columns of a piece that settlements and lineage edges read.
_PIECE_COLUMNS = ["issue_txn_id", "receipt_txn_id", "receipt_pos", "qty", "amount"]


def _pieces_in_order(pieces: pl.DataFrame) -> pl.DataFrame:
    """The pieces' output columns sorted by ``_PIECE_ORDER`` (on a packed integer key)."""
    narrow = pieces.select(*_PIECE_COLUMNS, "principle", "real")
    packed = sort_order(pieces, _PIECE_ORDER)
    if packed is None or packed[1]:
        return pieces.sort(_PIECE_ORDER).select(narrow.columns)
    return _gather(narrow, packed[0])


def _cost_flow(
    output: KernelOutput, rows: pl.DataFrame, ordered: pl.DataFrame
) -> tuple[pl.DataFrame, tuple[int, int, int]]:
    """Lineage edges: receipt -> issue per piece, issue -> derived receipt, closing pairs;
    and the number of edges of each of those three runs.

    ``ordered`` holds every piece (real and adjustment-only) in ``_PIECE_ORDER``.
    """
    pos, txn_ids = rows["pos"], rows["txn_id"].rechunk()
    settlement = ordered.select(
        from_txn_id=pl.col("receipt_txn_id"),
        to_txn_id=pl.col("issue_txn_id"),
        qty=pl.col("qty"),
        amount=pl.col("amount"),
        kind=pl.lit("settlement"),
    )
    # Both ends' ids by a lookup of their positions (an inner join: edges whose rows are
    # missing are dropped).
    flows = output.flows.filter(pl.col("kind").is_in(["transfer", "production"]))
    feeds = (
        flows.with_columns(
            from_txn_id=txn_ids.gather(rows_at(pos, flows["issue_pos"])),
            to_txn_id=txn_ids.gather(rows_at(pos, flows["receipt_pos"])),
        )
        .filter(pl.col("from_txn_id").is_not_null() & pl.col("to_txn_id").is_not_null())
        .sort(["issue_pos", "receipt_pos"])
        .select("from_txn_id", "to_txn_id", "qty", "amount", "kind")
    )
    # A closing pair is an issue and the receipt right after it (pos + 1). Only the averaging
    # walk's pairs: a negative on-hand row of a perpetual item is virtual too, and pairs with
    # nothing (the row after it is another group's on-hand row, or none).
    in_pair = pl.col("txn_id").str.starts_with(f"{CLOSING_PREFIX}:")
    closing_issues = (
        rows.select("pos", "txn_id", "q_abs", "w_abs")
        .filter(rows.select(pl.col("is_virtual_new") & ~pl.col("is_receipt") & in_pair).to_series())
        .sort("pos")
    )
    closing = (
        closing_issues.with_columns(
            to_txn_id=txn_ids.gather(rows_at(pos, closing_issues["pos"] + 1))
        )
        .filter(pl.col("to_txn_id").is_not_null())
        .select(
            from_txn_id=pl.col("txn_id"),
            to_txn_id=pl.col("to_txn_id"),
            qty=pl.col("q_abs"),
            amount=pl.col("w_abs"),
            kind=pl.lit("transfer"),
        )
    )
    edges = pl.concat([settlement, feeds, closing], how="vertical_relaxed")
    return edges.select(
        "from_txn_id",
        "to_txn_id",
        qty=from_micro(pl.col("qty")),
        amount=from_cents(pl.col("amount")),
        kind="kind",
    ), (settlement.height, feeds.height, closing.height)


def _with_virtual_hashes(
    closed: pl.DataFrame, virtual: pl.DataFrame, columns: list[str]
) -> pl.DataFrame:
    """``closed`` with a ``row_hash`` column: the hash of the input columns of virtual rows.

    Virtual rows (created by the run, ``HASH_ROW`` null) are hashed here; the others stay null
    until :func:`finish_result` takes their input row's hash. ``virtual`` holds the input
    ``columns`` of the virtual rows of ``closed``, in the same order.
    """
    filled = pl.repeat(None, closed.height, dtype=pl.String, eager=True).alias("row_hash")
    if not virtual.is_empty():
        filled.scatter(closed[HASH_ROW].is_null().arg_true(), row_hashes(virtual, columns))
    return closed.with_columns(filled)


def _deviation_rows(output: KernelOutput, max_deviation: Decimal, dims: list[str]) -> pl.DataFrame:
    """Financial receipts dated <= D whose unit cost is far from their group's median."""
    # Posted receipts only: a virtual row (a weighted average's closing receipt, an opening's
    # on-hand row) has no posted cost of its own and would move the median.
    receipts = output.rows.filter(
        pl.col("in_scope")
        & pl.col("fin")
        & pl.col("is_receipt")
        & (pl.col("q0") > 0)
        & ~pl.col("txn_id").str.starts_with(VIRTUAL_PREFIX)
    ).with_columns(
        unit=mul_div_round(
            to_cents(pl.col("amount")),
            pl.lit(10**10),
            to_micro(pl.col("qty")),
            wide_result=True,
        )
    )
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


def check_log(
    output: KernelOutput,
    cfg: CloseConfig,
    closing_date: dt.date,
    run_id: str,
    accounts: pl.DataFrame | None,
    posted_accounts: PostedAccounts | None = None,
    state: OpeningState | None = None,
) -> pl.DataFrame:
    """The pre-close list in the columns of ``log``."""
    dims = list(cfg.dims)
    adjusted = _adjustments_cents(output, accounts, dims, posted_accounts)
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
    log = _run_log(output, cfg, closing_date, dims, state)
    deviation = _deviation_rows(output, Decimal(str(cfg.max_deviation)), dims)
    combined = pl.concat(
        [
            conform(t.with_columns(close_id=pl.lit(run_id)), "log", dims)
            for t in (log, missing, deviation)
        ]
    )
    return combined.sort(["level", *log_order(dims)], nulls_last=True, maintain_order=True)
