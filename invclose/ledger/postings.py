"""Posting: validate a batch against the ledger and build its posting vouchers.

A batch is validated as a whole (``invclose.validate.normalize_transactions``), then against
what the ledger holds: a ``txn_id`` already posted may come again only as the invoice of a
physical row (``status = financial``, same item, dimensions and sign); a row dated on or
before the latest closing date is refused (:class:`invclose.ClosedPeriodError` naming the rows
and the date). Any failure rejects the whole batch.

Posting vouchers (one voucher per transaction, dated the row's date): the inventory account
takes the posted amount (debit when positive) and the offset account the opposite. An invoice
update reverses the physical row's carried value (its amount plus the adjustments of that
version) from the physical row's accounts and posts the invoiced amount to the invoice's
accounts, netted per account, so with unchanged accounts it posts the difference. An
adjustment of the physical version dated after the invoice (a recalculation dated later,
run before the invoice was posted) is taken back on its own date, in a voucher of its own:
on the invoice's date the GL never held it. Accounts come
from the row, else from the configuration's accounts mapping
(:func:`invclose.kernel.accounts.fill_accounts`).
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from invclose.errors import (
    ClosedPeriodError,
    InputValidationError,
    MissingAccountError,
    first_named,
)
from invclose.kernel.accounts import fill_accounts
from invclose.kernel.money import from_cents, to_cents, wide_cents, wide_micro
from invclose.schemas import FINANCIAL, MONEY, PHYSICAL, input_schema
from invclose.validate import (
    GROUP_LIMIT,
    INVOICE_BEFORE_HINT,
    INVOICE_EXCEEDS_HINT,
    dated_rows,
    id_failures,
    refuse_orders_broken_with,
    with_closed_period,
)

__all__ = [
    "check_against_ledger",
    "missing_amounts",
    "posting_vouchers",
    "refuse_backdated",
    "refuse_locked_or_repeated",
    "refuse_too_large",
]


def missing_amounts(batch: pl.DataFrame) -> None:
    """Refuse rows without ``amount`` while posting-time costing is not available.

    This is the hook for ``invclose.post_costs``: :meth:`Ledger.post` calls it only when
    that function does not exist.
    """
    missing = batch.filter(pl.col("amount").is_null())
    if missing.is_empty():
        return
    hint = (
        "give the posted cost in amount: posting-time costing (invclose.post_costs) is not "
        "available in this version"
    )
    failures = id_failures(missing, "amount", "amount_missing", pl.col("amount"), hint)
    msg = (
        f"cannot post {missing.height} row(s) without an amount: "
        f"{first_named(missing['txn_id'].to_list())}. {hint[0].upper()}{hint[1:]}."
    )
    raise InputValidationError(msg, failures)


def refuse_backdated(batch: pl.DataFrame, lock: dt.date | None) -> None:
    """Raise ``ClosedPeriodError`` if any row is dated on or before the closing date ``lock``."""
    if lock is None:
        return
    late = batch.filter(pl.col("date") <= lock)
    if late.is_empty():
        return
    hint = f"post them with a date after {lock.isoformat()}, or reverse the close first"
    failures = id_failures(late, "date", "posting_into_closed_period", pl.col("date"), hint)
    rows = [f"{t} ({d.isoformat()})" for t, d in late.select("txn_id", "date").iter_rows()]
    msg = (
        f"{late.height} row(s) dated on or before the closing date {lock.isoformat()} were "
        f"refused, the whole batch is rejected and nothing was posted: {first_named(rows)}. "
        f"{hint[0].upper()}{hint[1:]}."
    )
    raise ClosedPeriodError(msg, failures)


_POSTED_HINT = (
    "a txn_id is posted once; it may come again only as the invoice of a physical row (status "
    "financial, same item, dimensions and sign of qty)"
)


def _with_posted_repeats(
    raw: pl.DataFrame, stored: pl.DataFrame, error: InputValidationError
) -> InputValidationError:
    """``error`` with the rows of ``raw`` that repeat an id the ledger holds as a financial
    row (nothing can invoice it: a repeat whatever the rest of the row says)."""
    if "txn_id" not in raw.columns or stored.is_empty():
        return error
    financial = stored.filter(pl.col("status") == FINANCIAL)["txn_id"]
    again = raw.select(pl.col("txn_id").cast(pl.String, strict=False)).filter(
        pl.col("txn_id").is_in(financial.implode())
    )
    if again.is_empty():
        return error
    found = id_failures(again, "txn_id", "txn_id_posted", pl.col("txn_id"), _POSTED_HINT)
    listed = first_named(again["txn_id"].to_list())
    message = (
        f"{error}\n{again.height} row(s) repeat a txn_id the ledger already holds as a financial "
        f"row: {listed}. Hint: {_POSTED_HINT}."
    )
    failures = [f for f in (error.failures, found) if f is not None]
    return InputValidationError(message, pl.concat(failures, how="diagonal_relaxed"))


def refuse_invalid_and_backdated(
    raw: pl.DataFrame,
    lock: dt.date | None,
    error: InputValidationError,
    stored: pl.DataFrame | None = None,
) -> None:
    """Raise ``error`` (the batch's validation failures), joined with the rows of ``raw`` that
    repeat a financial row of ``stored`` (the current versions of the batch's ids) and with
    the refusal of its rows dated on or before ``lock`` where their dates can be read
    (``ClosedPeriodError`` naming all), so that one correction of the batch suffices (as
    :func:`refuse_locked_or_repeated`).
    """
    if stored is not None:
        error = _with_posted_repeats(raw, stored, error)
    rows = dated_rows(raw)
    if lock is None or rows is None:
        raise error
    try:
        refuse_backdated(rows, lock)
    except ClosedPeriodError as closed:
        raise with_closed_period(error, closed) from error
    raise error


def check_against_ledger(
    batch: pl.DataFrame, stored: pl.DataFrame, dims: tuple[str, ...]
) -> pl.DataFrame:
    """Refuse ids already posted unless the row invoices a stored physical row.

    ``stored`` holds the current versions of the batch's ids that the ledger already has.
    Returns the invoice rows of the batch joined with the physical row they replace
    (``phys_*`` columns).
    """
    keys = ["item_id", *dims]
    old = stored.select(
        "txn_id",
        *[pl.col(k).alias(f"phys_{k}") for k in keys],
        pl.col("status").alias("phys_status"),
        pl.col("qty").alias("phys_qty"),
        pl.col("date").alias("phys_date"),
        pl.col("row_hash").alias("phys_hash"),
        pl.col("amount").alias("phys_amount"),
        pl.col("posted_inventory_account").alias("phys_inventory_account"),
        pl.col("posted_offset_account").alias("phys_offset_account"),
    )
    again = batch.join(old, on="txn_id", how="inner")
    same_group = pl.all_horizontal([pl.col(k).eq_missing(pl.col(f"phys_{k}")) for k in keys])
    invoice = (
        (pl.col("phys_status") == PHYSICAL)
        & (pl.col("status") == FINANCIAL)
        & same_group
        & (pl.col("qty").sign() == pl.col("phys_qty").sign())
    )
    bad = again.filter(~invoice)
    over = again.filter(invoice & (pl.col("qty").abs() > pl.col("phys_qty").abs()))
    early = again.filter(invoice & (pl.col("date") < pl.col("phys_date")))
    messages: list[str] = []
    found: list[pl.DataFrame] = []
    if not bad.is_empty():
        hint = _POSTED_HINT
        found.append(id_failures(bad, "txn_id", "txn_id_posted", pl.col("txn_id"), hint))
        messages.append(
            f"{bad.height} row(s) repeat a txn_id the ledger already holds and are not the "
            f"invoice of a physical row: {first_named(bad['txn_id'].to_list())}. The whole batch "
            f"is rejected. Hint: {hint}."
        )
    if not over.is_empty():
        check = "invoice_exceeds_physical"
        found.append(id_failures(over, "qty", check, pl.col("qty"), INVOICE_EXCEEDS_HINT))
        messages.append(
            f"{over.height} invoice(s) carry more quantity than the physical row they replace: "
            f"{first_named(over['txn_id'].to_list())}. The whole batch is rejected. Hint: "
            f"{INVOICE_EXCEEDS_HINT}."
        )
    if not early.is_empty():
        check = "invoice_before_physical"
        found.append(
            id_failures(early, "date", check, pl.col("date").cast(pl.String), INVOICE_BEFORE_HINT)
        )
        messages.append(
            f"{early.height} invoice(s) are dated before the physical row they replace: "
            f"{first_named(early['txn_id'].to_list())}. The whole batch is rejected. Hint: "
            f"{INVOICE_BEFORE_HINT}."
        )
    if messages:
        raise InputValidationError("\n".join(messages), pl.concat(found))
    return again


def refuse_broken_orders(batch: pl.DataFrame, posted: pl.DataFrame) -> None:
    """Refuse rows of ``batch`` that break the rules of orders together with the ``posted``
    rows of the same orders (:func:`invclose.validate.refuse_orders_broken_with`)."""
    refuse_orders_broken_with(batch, posted, "the ledger")


def refuse_locked_or_repeated(
    batch: pl.DataFrame,
    lock: dt.date | None,
    unpaired: pl.DataFrame,
    stored: pl.DataFrame,
    dims: tuple[str, ...],
    order_rows: pl.DataFrame | None = None,
) -> None:
    """A batch's refusals at once: rows in the closed period (:func:`refuse_backdated`), ids
    already posted (:func:`check_against_ledger` of ``unpaired``, the batch without the
    invoice halves of its own pairs) and orders broken with their posted rows
    (:func:`refuse_broken_orders` against ``order_rows``).

    A batch failing several raises ``ClosedPeriodError`` naming every refused row, so that one
    correction of the batch suffices.
    """
    errors: list[ClosedPeriodError | InputValidationError] = []
    try:
        refuse_backdated(batch, lock)
    except ClosedPeriodError as exc:
        errors.append(exc)
    try:
        check_against_ledger(unpaired, stored, dims)
    except InputValidationError as exc:
        errors.append(exc)
    if order_rows is not None:
        try:
            refuse_broken_orders(batch, order_rows)
        except InputValidationError as exc:
            errors.append(exc)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        found = [e.failures for e in errors if e.failures is not None]
        failures = pl.concat(found, how="diagonal_relaxed") if found else None
        # A closed-period refusal among them makes the whole one a ClosedPeriodError.
        closed = any(isinstance(e, ClosedPeriodError) for e in errors)
        kind = ClosedPeriodError if closed else InputValidationError
        raise kind("\n".join(str(e) for e in errors), failures)


#: The unit and the exact Int128 conversion of the columns a group's size is counted in.
_SIZE_UNITS = {"amount": ("cents", wide_cents), "qty": ("micro-units", wide_micro)}


def units(column: str) -> pl.Expr:
    """The absolute value of the Decimal ``column`` in the kernel's integer units, as Int128.

    >>> from decimal import Decimal
    >>> f = pl.DataFrame({"amount": [Decimal("-1.25"), Decimal("3")]})
    >>> f.select(units("amount"))["amount"].to_list()
    [125, 300]
    """
    return _SIZE_UNITS[column][1](pl.col(column)).abs()


def refuse_too_large(batch: pl.DataFrame, stored: pl.DataFrame, dims: tuple[str, ...]) -> None:
    """Refuse the batch's rows of groups that, with the rows the ledger holds, pass the bound
    every close refuses (``too_large``: more than 2**62 cents or micro-units of a group).

    ``stored`` holds per group (``item_id`` and ``dims``) the sums ``amount`` (cents) and
    ``qty`` (micro-units) of the absolute values of the ledger's current rows, other than
    the batch's own ids. Accepting such a batch would make every later close fail on rows
    already posted, which no post can take back.
    """
    keys = ["item_id", *dims]
    sizes = batch.group_by(keys).agg(units("amount").sum(), units("qty").sum())
    both = sizes.join(stored, on=keys, how="left", nulls_equal=True, suffix="_stored")
    found = []
    for column, (unit, _) in _SIZE_UNITS.items():
        total = pl.col(column) + pl.col(f"{column}_stored").fill_null(0)
        over = both.filter(total > GROUP_LIMIT).select(keys)
        if over.is_empty():
            continue
        rows = batch.join(over, on=keys, how="semi", nulls_equal=True)
        hint = (
            f"with the rows the ledger holds, the {column} values of this item and financial "
            f"dimension would add up (in absolute value) to more than 2**62 {unit}, which no "
            "close can compute exactly: check the row for a mistyped value, or post the item "
            "under another item id"
        )
        found.append(id_failures(rows, column, "too_large", pl.col(column), hint))
    if not found:
        return
    failures = pl.concat(found)
    listed = first_named(failures["txn_id"].unique(maintain_order=True).to_list())
    msg = (
        f"{failures['txn_id'].n_unique()} row(s) would make their item and financial dimension "
        f"too large to close exactly with the rows the ledger holds: {listed}. The whole batch "
        f"is rejected. Hint: {failures['hint'][0]}."
    )
    raise InputValidationError(msg, failures)


def _variance_accounts(rows: pl.DataFrame, mapping: pl.DataFrame | None) -> pl.Series:
    """Each row's ``variance_account`` from the mapping (same specificity rules)."""
    if mapping is None or "variance_account" not in mapping.columns:
        return pl.Series("variance_account", [None] * rows.height, dtype=pl.String)
    as_accounts = mapping.select(
        "kind",
        "item_group",
        inventory_account=pl.col("variance_account"),
        offset_account=pl.col("variance_account"),
    )
    blank = rows.select(
        "kind",
        "item_group",
        inventory_account=pl.lit(None, pl.String),
        offset_account=pl.lit(None, pl.String),
    )
    return fill_accounts(blank, as_accounts)["inventory_account"].alias("variance_account")


def take_back_on(invoiced: str) -> pl.Expr:
    """The date an adjustment of an invoiced physical version is taken back: the invoice's
    (column ``invoiced``), or the adjustment's own ``adjustment_date`` when that is later (a
    recalculation dated after the invoice, run before it was posted): the GL never held it
    before."""
    return pl.max_horizontal(invoiced, "adjustment_date")


def _legs(
    batch: pl.DataFrame, invoices: pl.DataFrame, carried: pl.DataFrame, dims: list[str]
) -> pl.DataFrame:
    """Signed amounts per row and account, in cents, before netting."""
    base = ["txn_id", "item_id", *dims, "item_group", "date", "seq"]
    amount = to_cents(pl.col("amount"))
    variance = to_cents(pl.col("variance")).fill_null(0)
    legs = [
        batch.select(*base, account=pl.col("posted_inventory_account"), net=amount, leg=0),
        batch.select(*base, account=pl.col("posted_offset_account"), net=-amount - variance, leg=1),
        batch.filter(variance != 0).select(
            *base, account=pl.col("variance_account"), net=variance, leg=4
        ),
    ]
    if not invoices.is_empty():
        replaced = invoices.select(
            "txn_id", "phys_hash", "phys_amount", "phys_inventory_account", "phys_offset_account"
        ).join(batch.select(base), on="txn_id", how="inner")
        # The physical version's amount, and each of its adjustments, taken back on the
        # invoice's date or on the adjustment's own date when that is later.
        adjusted = replaced.join(carried, on="phys_hash", how="inner").with_columns(
            date=take_back_on("date"), net=pl.col("adjusted")
        )
        taken = pl.concat(
            [
                replaced.with_columns(net=to_cents(pl.col("phys_amount"))).select(
                    *base, "phys_inventory_account", "phys_offset_account", "net"
                ),
                adjusted.select(*base, "phys_inventory_account", "phys_offset_account", "net"),
            ]
        )
        legs += [
            taken.select(
                *base, account=pl.col("phys_inventory_account"), net=-pl.col("net"), leg=2
            ),
            taken.select(*base, account=pl.col("phys_offset_account"), net=pl.col("net"), leg=3),
        ]
    typed = [
        leg.with_columns(pl.col("net").cast(pl.Int64), pl.col("leg").cast(pl.Int64)) for leg in legs
    ]
    return pl.concat(typed)


def net_voucher_lines(
    lines: pl.DataFrame, close_id: str, prefix: str, dims: list[str], *, date: str
) -> pl.DataFrame:
    """Contract ``vouchers`` columns of per-transaction lines holding ``net`` cents.

    ``lines`` has ``voucher_no``, ``line_no``, the ``date`` column, ``account``, ``net``
    (debit when positive), ``item_id``, ``item_group``, the dimensions and ``txn_id``;
    voucher ids are ``prefix`` and the number.
    """
    return lines.select(
        close_id=pl.lit(close_id),
        voucher_id=pl.format("{}{}", pl.lit(prefix), pl.col("voucher_no")),
        line_no=pl.col("line_no"),
        posting_date=pl.col(date),
        account=pl.col("account"),
        debit=from_cents(pl.col("net").clip(lower_bound=0)),
        credit=from_cents((-pl.col("net")).clip(lower_bound=0)),
        item_id=pl.col("item_id"),
        item_group=pl.col("item_group"),
        **{d: pl.col(d) for d in dims},
        txn_id=pl.col("txn_id"),
    )


def posting_vouchers(
    batch: pl.DataFrame,
    invoices: pl.DataFrame,
    carried: pl.DataFrame,
    accounts: pl.DataFrame | None,
    dims: tuple[str, ...],
    post_id: str,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The batch with its posted accounts, and its voucher lines (contract ``vouchers``).

    ``batch`` has the input columns plus ``item_group``; ``invoices`` is the output of
    :func:`check_against_ledger`; ``carried`` has ``phys_hash``, ``adjustment_date`` and
    ``adjusted`` (cents of the adjustments of that physical version on that date).
    """
    dim_list = list(dims)
    if "variance" not in batch.columns:
        batch = batch.with_columns(variance=pl.lit(None, MONEY))
    batch = batch.with_columns(variance_account=_variance_accounts(batch, accounts))
    filled = fill_accounts(batch, accounts).with_columns(
        posted_inventory_account=pl.col("inventory_account"),
        posted_offset_account=pl.col("offset_account"),
    )
    original = batch.select("txn_id", "inventory_account", "offset_account")
    posted = filled.drop("inventory_account", "offset_account").join(
        original, on="txn_id", how="left"
    )
    legs = _legs(posted, invoices, carried, dim_list)
    needs = legs.filter((pl.col("net") != 0) & pl.col("account").is_null())
    if not needs.is_empty():
        ids = needs["txn_id"].unique(maintain_order=True).to_list()
        rows = posted.filter(pl.col("txn_id").is_in(ids))
        pairs = rows.select("kind", "item_group").unique().sort(["kind", "item_group"])
        missing = "; ".join(f"kind={k!r} item_group={g!r}" for k, g in pairs.iter_rows())
        msg = (
            f"{len(ids)} row(s) must post a voucher but have no inventory_account or "
            f"offset_account (or variance_account) and the accounts mapping gives none (no "
            f"matching row, or one that leaves the account empty): {first_named(ids)}. Missing "
            f"mapping keys: {missing}. Fill the columns on the rows or the mapping."
        )
        raise MissingAccountError(
            msg, rows.select("txn_id", "kind", "item_group", "inventory_account", "offset_account")
        )
    keys = ["txn_id", "item_id", *dim_list, "item_group", "date", "seq", "account"]
    netted = legs.group_by(keys).agg(pl.col("net").sum(), pl.col("leg").min())
    netted = netted.filter(pl.col("net") != 0)
    # One voucher per posted row, and one per later take-back that posts something.
    voucher = ["date", "seq", "txn_id"]
    order = (
        pl.concat([posted.select(voucher), netted.select(voucher)])
        .unique()
        .sort(voucher)
        .with_row_index("voucher_no", offset=1)
        .with_columns(pl.col("voucher_no").cast(pl.Int64))
    )
    lines = (
        netted.join(order, on=voucher, how="left")
        .sort(["voucher_no", "leg", "account"])
        .with_columns(line_no=pl.int_range(1, pl.len() + 1).over("voucher_no").cast(pl.Int64))
    )
    vouchers = net_voucher_lines(lines, post_id, f"{post_id}-T", dim_list, date="date")
    stored = posted.select(
        *input_schema(dims), "item_group", "posted_inventory_account", "posted_offset_account"
    )
    return stored, vouchers
