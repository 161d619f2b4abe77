"""Posting-time costing: ``post_costs`` fills the amounts the ERP posts before any close.

Periodic items (fifo, lifo, lifo_date, the weighted averages) post issues, and receipts
without a price, at the **running average** of their group (close-semantics §1.3);
``standard`` items post every row at the standard cost active on its date, the rest of a given
amount being purchase price variance (§3.7); ``moving_average`` items follow §3.8. Rows are
replayed in posting order (``seq``, then ``txn_id``) in one compiled pass.

Choices where the specification is silent (also in the README):

* an **invoice** replaces its physical row, which is either in the same frame (both rows are
  kept and returned; each is replayed at its own place in posting order, so rows between them
  see the physical stock, and an invoice ordered before its physical row is refused) or open
  in ``opening``. The invoice takes the whole physical row out of stock and puts its own
  quantity in: a partial invoice's rest comes back as the new physical row the contract asks
  for. Under ``moving_average`` a receipt's invoice capitalises its difference to the
  physical row's own price (its given amount, pro rata for the invoiced quantity) only for
  what is still on hand, on top of what the physical row put into stock: a receipt that
  crossed zero put its gap to negative stock into ``variance`` when received (§3.8), and the
  invoice does not undo it. A posted physical row's price is its amount plus an optional
  ``variance`` column of ``posted``; one open in ``opening`` is compared with its open value
  plus what ``physical_variance`` gives it (a close keeps no variance).
  An issue's invoice keeps the cost the issue left at;
* a backdated ``moving_average`` row takes the current average like any other row; its gap is
  not split out (``variance`` 0);
* issues never carry a ``variance``: their cost is the average (``moving_average``) or the
  standard cost (``standard``), whatever amount was given. Only a receipt has a price of its
  own, so only a receipt has a purchase price variance;
* a **standard cost change** is revalued once it is active by the frame's last date (the
  on-hand before it is then known) and dated after ``opening``'s closing date (an earlier one
  belongs to the run that made the opening); the on-hand is the financial one, the
  opening's included (a physical receipt is revalued by its invoice, which posts at the
  standard in force then). A revaluation row already in the input (``post_costs``' own output given
  back) is not added again; it keeps its amount and, like a new one, posts against the
  variance account. When the on-hand at the change now comes to more or less than the parts
  already there (a row backdated before the change), the difference is one more part
  (``REVAL#2:...``, ``REVAL#3:...``) dated the change;
* ``posted`` rows (what ``Ledger.post`` holds since its state in force) are replayed with
  their amounts as final, to rebuild the state, and are not returned.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl

from invclose.assemble import resolve_items, unit_costs
from invclose.config import CloseConfig, Method
from invclose.errors import InputValidationError, first_named
from invclose.io import to_polars
from invclose.kernel.money import from_cents, mul_div_round, to_cents, to_micro
from invclose.kernel.posting_walk import MOVING, PERIODIC, STANDARD, posting_walk
from invclose.kernel.prepare import group_keys
from invclose.kernel.virtual import dims_text
from invclose.opening import (
    OpeningState,
    known_to_opening,
    load_opening,
    over_invoice_error,
    over_invoices,
)
from invclose.schemas import MICRO_PER_UNIT, MONEY, input_schema
from invclose.validate import (
    GROUP_LIMIT,
    id_failures,
    normalize_items,
    normalize_transactions,
    oversized,
)

_EARLIEST = dt.date(1, 1, 1)


def _missing_standard(frame: pl.DataFrame) -> None:
    missing = frame.filter(
        (pl.col("method") == Method.STANDARD.value) & pl.col("std_cents").is_null()
    )
    if missing.is_empty():
        return
    items = sorted(set(missing["item_id"].to_list()))
    failures = id_failures(
        missing,
        "standard_cost",
        "standard_cost_missing",
        pl.col("date"),
        "give the item a standard_cost valid on or before this date",
    )
    msg = (
        f"standard-cost item(s) without a standard cost for the row's date: {', '.join(items)}. "
        "Add standard_cost (and valid_from for dated costs) to the item table."
    )
    raise InputValidationError(msg, failures)


def _opening_state(
    state: OpeningState | None, dims: tuple[str, ...], keys: list[str]
) -> tuple[pl.DataFrame, pl.DataFrame, dt.date | None]:
    """Per-group opening quantities and values, open physical rows (for invoices), its date."""
    empty_groups = pl.DataFrame(
        schema={
            **{k: pl.String for k in keys},
            "fq": pl.Int64,
            "fv": pl.Int64,
            "pq": pl.Int64,
            "pv": pl.Int64,
        }
    )
    empty_phys = pl.DataFrame(
        schema={"txn_id": pl.String, "open_phys_q": pl.Int64, "open_phys_v": pl.Int64}
    )
    if state is None:
        return empty_groups, empty_phys, None
    items = state.open_items.with_columns(
        q=to_micro(pl.col("open_qty")),
        v=to_cents(pl.col("open_value")),
        fin=pl.col("status") == "financial",
    )
    groups = items.group_by(keys).agg(
        fq=pl.col("q").filter(pl.col("fin")).sum(),
        fv=pl.col("v").filter(pl.col("fin")).sum(),
        pq=pl.col("q").filter(~pl.col("fin")).sum(),
        pv=pl.col("v").filter(~pl.col("fin")).sum(),
    )
    # What an invoice takes out of physical stock is what the opening holds of the row.
    physical = items.filter(~pl.col("fin")).select(
        "txn_id", open_phys_q=pl.col("q"), open_phys_v=pl.col("v")
    )
    return groups, physical, state.closing_date


def _invoice_pairs(ordered: pl.DataFrame) -> pl.DataFrame:
    """Each in-frame invoice's physical row: its position in ``ordered``.

    ``ordered`` is in posting order with a ``__pos`` column. Validation has made sure a
    repeated ``txn_id`` is an invoice pair (same item and dimensions, one physical and one
    financial row); the physical row must come first in posting order.
    """
    physical = ordered.filter(pl.col("status") == "physical").select(
        "txn_id", phys_pos="__pos", phys_seq="seq"
    )
    pairs = (
        ordered.filter(pl.col("status") == "financial")
        .select("txn_id", "__pos", "seq")
        .join(physical, on="txn_id", how="inner")
    )
    early = pairs.filter(pl.col("seq") < pl.col("phys_seq"))
    if not early.is_empty():
        failures = id_failures(
            early,
            "seq",
            "invoice_before_physical",
            pl.col("seq"),
            "give the invoice a seq after its physical row's",
        )
        ids = first_named(early["txn_id"])
        msg = f"invoice(s) posted before the physical row they replace (by seq): {ids}"
        raise InputValidationError(msg, failures)
    return pairs.select("__pos", "phys_pos")


def _refuse_too_large(
    ordered: pl.DataFrame, groups: pl.DataFrame, too_large: np.ndarray, keys: list[str]
) -> None:
    """Raise naming every row of the groups whose costed values pass ``GROUP_LIMIT``.

    The walk computes in 64-bit cents; a group whose amounts (their absolute sum, a running
    value, one cost) would pass 2**62 cents is refused instead of wrapping around, as the
    close refuses it (``too_large``).
    """
    bad = groups.filter(pl.Series(too_large)).select("gid")
    rows = ordered.join(bad, on="gid", how="semi").filter(~pl.col("__posted")).sort("__in")
    if rows.is_empty():  # only rows posted before: name them, they make the group too large
        rows = ordered.join(bad, on="gid", how="semi").sort("__in")
    hint = (
        "the costed amounts of this item and financial dimension (quantity x standard, "
        "default or average cost, and the given amounts) would pass 2**62 cents in absolute "
        "value, which cannot be computed exactly in 64-bit integers: check the row's qty, "
        "amount and the item's costs for a mistyped value, or split the item"
    )
    failures = id_failures(rows, "amount", "too_large", pl.col("amount"), hint)
    named = rows.select(*keys).unique(maintain_order=True)
    groups_text = ", ".join(
        "/".join("" if v is None else str(v) for v in r) for r in named.head(20).iter_rows()
    )
    msg = (
        f"post_costs: {rows.height} row(s) of {named.height} group(s) ({groups_text}) cost to "
        f"more than 2**62 cents (46,116,860,184,273,879.04) [too_large]: "
        f"{first_named(rows['txn_id'])}. "
        f"Fix: {hint}. Every row is in this error's .failures DataFrame."
    )
    raise InputValidationError(msg, failures)


def _refuse_revaluations_too_large(
    ordered: pl.DataFrame,
    costed: pl.DataFrame,
    revaluations: pl.DataFrame,
    groups: pl.DataFrame,
    keys: list[str],
) -> None:
    """Refuse the groups whose amounts with their new revaluations pass ``GROUP_LIMIT``.

    A cost change revalues the whole on-hand at once: its amount can pass 64 bits, or the
    group's absolute amounts with it the close's bound, though every row costed within it.
    """
    if revaluations.is_empty():
        return
    cents = pl.col("amount").cast(MONEY).reinterpret(dtype=pl.Int128).abs()
    sizes = pl.concat(
        [
            costed.select(*keys, size=cents.fill_null(0)),
            revaluations.select(*keys, size=cents.fill_null(0)),
        ]
    )
    mask = oversized(sizes, keys, pl.col("size"))
    if mask is None:
        return
    over = sizes.filter(mask).select(keys).unique()
    if over.is_empty():
        return
    bad = groups.join(over, on=keys, how="semi", nulls_equal=True)
    too_large = groups["gid"].is_in(bad["gid"].implode()).to_numpy()
    _refuse_too_large(ordered, groups, too_large, keys)


#: The prefix of a revaluation's later part (``REVAL#2:...``): replaced by ``REVAL:`` it gives
#: the id of the change's first part (the prefix is fixed text, whatever the ids hold).
_PART_PREFIX = r"^REVAL#\d+:"


def _revaluations(
    moves: pl.DataFrame,
    items: pl.DataFrame | None,
    dims: tuple[str, ...],
    *,
    latest: dt.date,
    opening_date: dt.date | None,
) -> pl.DataFrame:
    """A ``revaluation`` row per standard group and new standard cost, for its on-hand.

    ``moves`` holds the changes of each standard group's financial on-hand quantity (``q``,
    micro-units) with their ``date`` (:func:`_onhand_moves`). A cost change is
    revalued when it is active by ``latest`` (the frame's last date: the on-hand before it is
    then known) and dated after ``opening_date`` (an earlier change belongs to the run that
    produced the opening).
    """
    if items is None:
        return pl.DataFrame(schema={**input_schema(dims), "variance": MONEY})
    changes = (
        items.filter(pl.col("standard_cost").is_not_null())
        .with_columns(pl.col("valid_from").fill_null(_EARLIEST))
        .sort("item_id", "valid_from")
        .with_columns(
            new_cents=to_cents(pl.col("standard_cost")),
            old_cents=to_cents(pl.col("standard_cost")).shift(1).over("item_id"),
        )
        .filter(pl.col("old_cents").is_not_null() & (pl.col("old_cents") != pl.col("new_cents")))
        .filter(pl.col("valid_from") <= latest)
        .select("item_id", "valid_from", "new_cents", "old_cents")
    )
    if opening_date is not None:
        changes = changes.filter(pl.col("valid_from") > opening_date)
    keys = group_keys(dims)
    onhand = (
        moves.join(changes, on="item_id", how="inner")
        .filter(pl.col("date") < pl.col("valid_from"))
        .group_by([*keys, "valid_from", "new_cents", "old_cents"])
        .agg(pl.col("q").sum())
        .sort([*keys, "valid_from"], nulls_last=False)
    )
    # Int128: a revaluation past 64 bits is refused by post_costs (too_large), not wrapped.
    change = mul_div_round(
        pl.col("new_cents") - pl.col("old_cents"),
        pl.col("q"),
        pl.lit(MICRO_PER_UNIT),
        wide_result=True,
    )
    rows = onhand.select(
        *keys,
        txn_id=pl.concat_str(
            [
                pl.lit("REVAL"),
                pl.col("valid_from").dt.to_string("%Y-%m-%d"),
                pl.col("item_id"),
                # Escaped like the virtual rows' ids: ("a|b", "c") and ("a", "b|c"), or a null
                # and an empty value, are different groups and get different ids.
                dims_text(dims),
            ],
            separator=":",
        ),
        date=pl.col("valid_from"),
        qty=pl.lit(0).cast(pl.Decimal(38, 6)),
        amount=from_cents(change),
        status=pl.lit("financial"),
        seq=pl.lit(-(2**63), pl.Int64),
        kind=pl.lit("revaluation"),
        # Against the variance account: the whole change is cost-change variance (§3.7).
        variance=from_cents(pl.lit(0, pl.Int128) - change),
    )
    schema = {**input_schema(dims), "variance": MONEY}
    return rows.select(
        [
            (pl.col(c) if c in rows.columns else pl.lit(None)).cast(t).alias(c)
            for c, t in schema.items()
        ]
    )


def post_costs(
    df: Any,
    *,
    items: Any = None,
    dimensions: list[str] | tuple[str, ...] = (),
    method: str = "fifo",
    include_physical_value: bool = False,
    opening: Any = None,
    posted: Any = None,
    physical_variance: Any = None,
) -> pl.DataFrame:
    """Fill the amounts the ERP posts: running average, standard cost, moving average.

    Parameters
    ----------
    df
        Transactions; ``amount`` may be null where the cost is to be computed.
    items
        Item table: ``method``, ``include_physical_value``, ``standard_cost`` (optionally
        dated by ``valid_from``), ``default_cost``.
    dimensions
        Financial dimension columns (the running average is per group).
    method, include_physical_value
        Defaults for items the table does not list.
    opening
        An earlier ``CloseResult`` (or its directory) whose open items start the replay.
        ``df`` may hold the whole history, as for ``close()``: rows the opening closed or
        holds open were costed before it and are returned as given (``variance`` null), not
        replayed again (the invoice of a physical row open in it is new).
    posted
        Rows already posted after ``opening`` (or from the start), with their final amounts:
        replayed, in posting order among the rows of ``df``, to rebuild the on-hand state, but
        never re-costed nor returned. Their amounts are what entered inventory (an invoice's
        capitalised amount, not its price), so re-costing them would not give them back;
        ``Ledger.post`` passes the rows it holds since the state in force. A physical row
        here may be invoiced in ``df``; an optional ``variance`` column gives the variance a
        row posted, so that a physical receipt's price is its amount plus its variance.
    physical_variance
        Optional ``txn_id`` and ``variance`` of physical rows open in ``opening``: the
        variance each posted (a ``moving_average`` receipt that crossed zero), so that its
        invoice is compared with its price, the open value plus that variance (a close
        keeps no variance; without it the price is the open value).

    Returns
    -------
    polars.DataFrame
        The rows of ``df`` in their order (both rows of an invoice pair), in the canonical
        transaction columns with ``amount`` filled, plus ``variance``: the part of a row's
        given amount that does not enter inventory. Standard items get a ``revaluation`` row
        (``qty`` 0) per new standard cost for their on-hand at that date, after them.

    Examples
    --------
    >>> import datetime as dt
    >>> from decimal import Decimal as D
    >>> import polars as pl, invclose
    >>> tx = pl.DataFrame({
    ...     "txn_id": ["r1", "r2", "s1"], "item_id": ["A"] * 3,
    ...     "date": [dt.date(2025, 1, 1)] * 3,
    ...     "qty": [D("2"), D("3"), D("-1")], "amount": [D("20.00"), D("36.00"), None]})
    >>> invclose.post_costs(tx)["amount"].to_list()[-1]
    Decimal('-11.20')
    """
    cfg = CloseConfig(
        method=method, dimensions=dimensions, include_physical_value=include_physical_value
    )
    dims = cfg.dims
    keys = group_keys(dims)
    # Both rows of an invoice pair stay: the physical row is replayed at its place in posting
    # order and the invoice at its own (which replaces it), and both are returned.
    tx = normalize_transactions(df, dimensions=dims, require_amount=False, keep_invoice_pairs=True)
    # Rows the opening closed or holds open were costed before it (the whole history may be
    # given, as to close()): its open items start the replay instead, so they are returned as
    # given (variance null) and not replayed a second time.
    state = load_opening(opening, dims)
    tx = tx.with_row_index("__given")
    if state is None:
        earlier = tx.clear()
    else:
        in_opening = known_to_opening(state.open_items, state.closed_items)
        tx, earlier = tx.filter(~in_opening), tx.filter(in_opening)
        over = over_invoices(tx, state)
        if over is not None:  # as close() refuses them (opening.merge_opening)
            raise over_invoice_error(over)
    tx = tx.with_columns(__posted=pl.lit(False), __fixed_var=pl.lit(0, pl.Int64))
    if posted is not None:
        before = normalize_transactions(
            posted, dimensions=dims, require_amount=False, keep_invoice_pairs=True
        )
        # Validated together: an id may repeat across the two only as an invoice pair.
        normalize_transactions(
            pl.concat([before, tx.drop("__posted", "__given", "__fixed_var")]),
            dimensions=dims,
            require_amount=False,
        )
        before = before.join(
            _posted_variances(posted), on=["txn_id", "status"], how="left"
        ).with_columns(pl.col("__fixed_var").fill_null(0))
        tx = pl.concat(
            [before.with_columns(__given=pl.lit(None, pl.UInt32), __posted=pl.lit(True)), tx],
            how="diagonal",
        )
    # Input order, to return the rows as given (joins below need not keep it).
    tx = tx.with_row_index("__in")
    item_table = normalize_items(items)
    frame = unit_costs(resolve_items(tx, item_table, cfg), item_table)
    _missing_standard(frame)
    start, physical, opening_date = _opening_state(state, dims, keys)
    if physical_variance is not None:
        known = _posted_variances(
            to_polars(physical_variance, "physical_variance").with_columns(
                status=pl.lit("physical")
            )
        ).select("txn_id", open_phys_var="__fixed_var")
        physical = physical.join(known, on="txn_id", how="left")
    else:
        physical = physical.with_columns(open_phys_var=pl.lit(None, pl.Int64))
    frame = frame.join(physical, on="txn_id", how="left").with_columns(
        pl.when(pl.col("status") == "financial").then(pl.col(c)).alias(c)
        for c in ("open_phys_q", "open_phys_v", "open_phys_var")
    )
    groups = frame.select(keys).unique().sort(keys, nulls_last=False).with_row_index("gid")
    groups = groups.join(start, on=keys, how="left", nulls_equal=True).with_columns(
        pl.col("fq", "fv", "pq", "pv").fill_null(0)
    )
    ordered = (
        frame.join(groups.select(*keys, "gid"), on=keys, how="left", nulls_equal=True)
        # A physical row sorts before its invoice when both have the same seq.
        .sort("gid", "seq", "txn_id", pl.col("status") == "financial")
        .with_row_index("__pos")
    )
    ordered = ordered.join(_invoice_pairs(ordered), on="__pos", how="left")
    code = (
        pl.when(pl.col("method") == Method.STANDARD.value)
        .then(STANDARD)
        .when(pl.col("method") == Method.MOVING_AVERAGE.value)
        .then(MOVING)
        .otherwise(PERIODIC)
    )
    arrays = ordered.select(
        code=code.cast(pl.Int64),
        fin=pl.col("status") == "financial",
        phys=pl.col("incl_phys").fill_null(False),
        q=to_micro(pl.col("qty")),
        v=to_cents(pl.col("amount")).fill_null(0),
        has=pl.col("amount").is_not_null(),
        fixed=pl.col("__posted") & pl.col("amount").is_not_null(),
        fixed_var=pl.col("__fixed_var").cast(pl.Int64),
        unit=pl.coalesce("std_cents", "fallback_cents").fill_null(0),
        inv_row=pl.col("phys_pos").cast(pl.Int64).fill_null(-1),
        inv_q=pl.col("open_phys_q").fill_null(0),
        inv_v=pl.col("open_phys_v").fill_null(0),
        # The opening keeps no variance: an open physical row's price is its open value,
        # plus the variance it posted when the caller knows it.
        inv_p=(pl.col("open_phys_v") + pl.col("open_phys_var").fill_null(0)).fill_null(0),
    )
    gids = ordered["gid"].to_numpy()
    g_off = np.searchsorted(gids, np.arange(groups.height + 1)).astype(np.int64)
    amount, variance, too_large = posting_walk(
        g_off,
        GROUP_LIMIT,
        *(
            arrays[c].to_numpy()
            for c in (
                *("code", "fin", "phys", "q", "v", "has", "fixed", "fixed_var", "unit"),
                *("inv_row", "inv_q", "inv_v", "inv_p"),
            )
        ),
        *(groups[c].to_numpy().astype(np.int64) for c in ("fq", "fv", "pq", "pv")),
    )
    if too_large.any():
        _refuse_too_large(ordered, groups, too_large, keys)
    costed = (
        ordered.with_columns(amount=pl.Series(amount), variance=pl.Series(variance))
        .with_columns(amount=from_cents(pl.col("amount")), variance=from_cents(pl.col("variance")))
        .sort("__in")
    )
    revaluations = _revaluations(
        _onhand_moves(ordered, start, item_table, cfg, keys, opening_date),
        item_table,
        dims,
        latest=tx["date"].max(),  # type: ignore[arg-type]
        opening_date=opening_date,
    )
    # Idempotent: a revaluation row already in the input or posted (post_costs' own output
    # given back) is not added again; it keeps its amount and, like a new one, posts against
    # variance. What the revaluation of a cost change now comes to beyond the parts already
    # there (a row backdated before the change and posted after them changed the on-hand at
    # the change) is added as one more part: "REVAL#<n>:...", dated the change. A change
    # whose on-hand is 0 comes to 0.00 (the parts already there are taken back).
    existing = (
        costed.filter(pl.col("kind") == "revaluation")
        .with_columns(base=pl.col("txn_id").str.replace(_PART_PREFIX, "REVAL:"))
        .filter(pl.col("base").is_in(revaluations["txn_id"].implode()))
    )
    if existing.is_empty():
        revaluations = revaluations.filter(pl.col("amount") != 0)
    else:
        costed = costed.with_columns(
            variance=pl.when(
                (pl.col("kind") == "revaluation")
                & pl.col("txn_id").is_in(existing["txn_id"].implode())
            )
            .then(-pl.col("amount"))
            .otherwise(pl.col("variance"))
        )
        done = existing.group_by("base").agg(
            done=to_cents(pl.col("amount")).sum(), parts=pl.len().cast(pl.Int64)
        )
        rest = to_cents(pl.col("amount")) - pl.col("done").fill_null(0)
        revaluations = (
            revaluations.join(done, left_on="txn_id", right_on="base", how="left")
            .with_columns(rest=rest)
            .filter(pl.col("rest") != 0)
            .with_columns(
                txn_id=pl.when(pl.col("parts").is_null())
                .then(pl.col("txn_id"))
                .otherwise(
                    pl.format(
                        "REVAL#{}:{}",
                        pl.col("parts") + 1,
                        pl.col("txn_id").str.strip_prefix("REVAL:"),
                    )
                ),
                amount=from_cents(pl.col("rest")).cast(MONEY),
                variance=from_cents(-pl.col("rest")).cast(MONEY),
            )
            .select(revaluations.columns)
        )
    _refuse_revaluations_too_large(ordered, costed, revaluations, groups, keys)
    costed = costed.filter(~pl.col("__posted")).select("__given", *input_schema(dims), "variance")
    if not earlier.is_empty():
        given_back = earlier.with_columns(variance=pl.lit(None, MONEY)).select(costed.columns)
        costed = pl.concat([costed, given_back]).sort("__given")
    costed = costed.drop("__given")
    return pl.concat([costed, revaluations]) if not revaluations.is_empty() else costed


def _posted_variances(posted: Any) -> pl.DataFrame:
    """The ``variance`` a posted row carries (cents), by ``txn_id`` and ``status``.

    Optional: a posted physical receipt of a ``moving_average`` item that crossed zero
    posted its gap to negative stock as variance, so its own price is its amount plus its
    variance, and its invoice is compared with that price. Rows without one count 0.
    """
    raw = to_polars(posted, "posted")
    empty = pl.DataFrame(schema={"txn_id": pl.String, "status": pl.String, "__fixed_var": pl.Int64})
    if "variance" not in raw.columns or "txn_id" not in raw.columns:
        return empty
    status = (
        pl.col("status").fill_null("financial") if "status" in raw.columns else pl.lit("financial")
    )
    return (
        raw.select(
            txn_id=pl.col("txn_id").cast(pl.String),
            status=status.cast(pl.String),
            __fixed_var=to_cents(pl.col("variance").cast(MONEY)),
        )
        .filter(pl.col("__fixed_var").is_not_null() & (pl.col("__fixed_var") != 0))
        .unique(["txn_id", "status"], keep="last")
    )


def _onhand_moves(
    ordered: pl.DataFrame,
    start: pl.DataFrame,
    items: pl.DataFrame | None,
    cfg: CloseConfig,
    keys: list[str],
    opening_date: dt.date | None,
) -> pl.DataFrame:
    """Changes of each ``standard`` group's financial on-hand quantity, dated (for
    revaluations), with the opening's financial on-hand as of its closing date.

    Physical rows do not count: a physical receipt stays at the standard of its day until
    its invoice, which reverses it and posts at the standard in force then. Revaluing it
    too would put the cost change on the books twice.
    """
    standard = pl.col("method") == Method.STANDARD.value
    financial = pl.col("status") == "financial"
    rows = ordered.filter(standard & financial).select(*keys, "date", q=to_micro(pl.col("qty")))
    parts = [rows]
    if opening_date is not None and not start.is_empty():
        carried = resolve_items(start, items, cfg).filter(standard)
        parts.append(carried.select(*keys, date=pl.lit(opening_date), q=pl.col("fq")))
    return pl.concat([p.with_columns(pl.col("q").cast(pl.Int64)) for p in parts])
