"""The public entry points: ``close``, ``recalculate`` and ``check``.

Each validates its input at the boundary, merges the opening state, runs the pure kernel and
returns result tables in the contract's types (Decimal money and quantities).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any

import polars as pl

from invclose.assemble import (
    HASH_ROW,
    Draft,
    PostedAccounts,
    assemble_draft,
    check_log,
    combined_missing_accounts,
    finish_result,
    log_order,
    resolve_items,
)
from invclose.config import PERIODIC_METHODS, CloseConfig, parse_date
from invclose.errors import (
    ConfigError,
    InputValidationError,
    InvcloseError,
    MissingAccountError,
    first_named,
)
from invclose.hashing import content_id, group_digests, row_hashes
from invclose.io import to_polars
from invclose.kernel.pipeline import KernelOutput, run_kernel, run_kernel_on
from invclose.kernel.prepare import build_working, with_method
from invclose.opening import (
    OpeningState,
    load_opening,
    merge_opening,
    refuse_invalid_and_backdated,
)
from invclose.parts import joined_draft, joined_log, working_parts
from invclose.progress import ProgressCallback, report
from invclose.schemas import input_schema
from invclose.validate import (
    id_failures,
    normalize_accounts,
    normalize_items,
    normalize_transactions,
    oversized,
    refuse_orders_broken_with,
)

if TYPE_CHECKING:
    from invclose.result import CloseResult

Opening = "CloseResult | str | Path | None"


def _config(config: CloseConfig | None, **overrides: Any) -> CloseConfig:
    if config is not None and not isinstance(config, CloseConfig):
        msg = (
            f"config must be an invclose.CloseConfig, not {type(config).__name__}; build one "
            "with invclose.CloseConfig(method=..., dimensions=[...]) or pass the settings as "
            "keywords"
        )
        raise ConfigError(msg)
    base = config if config is not None else CloseConfig()
    return base.with_overrides(**overrides)


def _known(opening: OpeningState | None, dims: tuple[str, ...]) -> pl.DataFrame | None:
    """Rows ``marked_to`` may name besides the input's: the opening's open and closed rows.

    A mark to a closed receipt is valid (the full history would hold it): the close then
    finds nothing open to settle it against, and the issue goes to the method.
    """
    if opening is None:
        return None
    open_rows = opening.open_items.select("txn_id", "item_id", *dims, "qty")
    closed = opening.closed_items.select("txn_id").join(open_rows, on="txn_id", how="anti")
    return pl.concat(
        [
            open_rows.with_columns(known_closed=pl.lit(False)),
            closed.with_columns(known_closed=pl.lit(True)),
        ],
        how="diagonal_relaxed",
    )


def _periodic_revaluations(frame: pl.DataFrame) -> InputValidationError | None:
    """The error for revaluation rows of periodic items (contract §1: a revaluation row only
    exists for standard and moving-average items); ``frame`` has ``txn_id``, ``item_id``,
    ``kind`` and ``method``."""
    periodic = sorted(m.value for m in PERIODIC_METHODS)
    bad = frame.filter((pl.col("kind") == "revaluation") & pl.col("method").is_in(periodic))
    if bad.is_empty():
        return None
    failures = id_failures(
        bad,
        "kind",
        "revaluation_periodic",
        pl.col("method"),
        "revalue only standard or moving_average items",
    )
    listed = first_named(
        [
            f"{t} (item {i}, {m})"
            for t, i, m in bad.select("txn_id", "item_id", "method").iter_rows()
        ]
    )
    msg = (
        f"revaluation rows are only allowed for standard and moving_average items: {listed}. "
        "A periodic item's value is corrected by the close itself."
    )
    return InputValidationError(msg, failures)


def _reject_periodic_revaluations(frame: pl.DataFrame) -> None:
    error = _periodic_revaluations(frame)
    if error is not None:
        raise error


def _raw_periodic_revaluations(
    raw: pl.DataFrame, items: pl.DataFrame | None, cfg: CloseConfig
) -> InputValidationError | None:
    """:func:`_periodic_revaluations` of input that failed validation, over the rows whose
    ids and kind can be read (so that they are named beside its other failures)."""
    if not {"txn_id", "item_id", "kind"} <= set(raw.columns):
        return None
    rows = raw.select(
        txn_id=pl.col("txn_id").cast(pl.String, strict=False),
        item_id=pl.col("item_id").cast(pl.String, strict=False),
        kind=pl.col("kind").cast(pl.String, strict=False).str.strip_chars(),
    ).filter((pl.col("kind") == "revaluation") & pl.col("item_id").is_not_null())
    if rows.is_empty():
        return None
    return _periodic_revaluations(resolve_items(rows, items, cfg))


def _check_dates(closing_date: dt.date, state: OpeningState | None, kind: str) -> None:
    if state is not None and state.lock_date is not None and closing_date <= state.lock_date:
        msg = (
            f"the {kind} date {closing_date.isoformat()} must be after the opening's closing "
            f"date {state.lock_date.isoformat()}"
        )
        raise ConfigError(msg)
    if state is not None and closing_date < state.closing_date:
        msg = (
            f"the {kind} date {closing_date.isoformat()} is before the opening's date "
            f"{state.closing_date.isoformat()}"
        )
        raise ConfigError(msg)


def prepare_frame(
    df: Any,
    cfg: CloseConfig,
    state: OpeningState | None,
    closing_date: dt.date,
    *,
    hash_rows: bool = True,
) -> pl.DataFrame:
    """Validate ``df`` and merge it with the opening: the kernel's input frame.

    An invoice dated after ``closing_date`` leaves its physical row in place. With
    ``hash_rows=False`` only rows the opening knows have their ``row_hash`` yet (the others
    are null, see :func:`invclose.opening.merge_opening`).
    """
    tx, items = _validated(df, cfg, state, closing_date)
    merged = merge_opening(tx, state, cfg.dims, hash_rows=hash_rows, as_of=closing_date)
    frame = resolve_items(merged, items, cfg)
    _reject_periodic_revaluations(frame)
    if state is not None:
        _refuse_moving_average_conversion(frame, state.moving_average_items)
        _refuse_too_large(frame, cfg.dims)
    return frame


def _refuse_too_large(frame: pl.DataFrame, dims: Sequence[str]) -> None:
    """The input's groups were bounded by validation (``too_large``); with the opening's open
    rows added, a group can still pass 2**62 micro-units or cents, where 64-bit sums wrap."""
    for column, unit in (("q0", "micro-units of quantity"), ("v0", "cents of value")):
        mask = oversized(frame, ["item_id", *dims], pl.col(column).cast(pl.Int128).abs())
        if mask is None:
            continue
        big = frame.filter(mask)
        hint = (
            f"with the opening's open rows, this item and financial dimension hold more than "
            f"2**62 {unit} (in absolute value), which the close cannot compute exactly"
        )
        failures = id_failures(big, column, "too_large", pl.col(column), hint)
        listed = first_named(sorted(set(big["item_id"].to_list())))
        msg = (
            f"groups too large to close exactly, with the opening's open rows: {listed}; "
            "split the item or correct a mistyped quantity or amount"
        )
        raise InputValidationError(msg, failures)


def _validated(
    df: Any, cfg: CloseConfig, state: OpeningState | None, closing_date: dt.date
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """The canonical transactions and item table; the failures of all three tables in one
    error (the accounts mapping is checked here too, before the kernel runs).

    ``failures`` of that error are the transactions' (or, when they pass, the first failing
    table's); its message lists every table's problems. When the transactions fail, the
    refusals that would follow validation are named too where the rows can be read:
    revaluation rows of periodic items, and (``ClosedPeriodError``) rows new in the closed
    period of ``state``.
    """
    errors: list[InputValidationError] = []
    tx: pl.DataFrame | None = None
    items: pl.DataFrame | None = None
    try:
        tx = normalize_transactions(
            df, dimensions=cfg.dims, known=_known(state, cfg.dims), as_of=closing_date
        )
    except InputValidationError as exc:
        errors.append(exc)
    try:
        items = normalize_items(cfg.items)
    except InputValidationError as exc:
        errors.append(exc)
    try:
        normalize_accounts(cfg.accounts)
    except InputValidationError as exc:
        errors.append(exc)
    if not errors:
        assert tx is not None  # no error: the transactions were validated
        if state is not None:
            # A month's rows may join an order the opening holds rows of (the January
            # shipment waiting for its February receipt).
            refuse_orders_broken_with(tx, state.open_items, "the opening")
        return tx, items
    raw = None
    if tx is None:
        # The transactions failed: the refusals that come after validation are named beside
        # their failures where the rows can be read (a file that cannot is the error itself).
        with contextlib.suppress(InvcloseError):
            raw = to_polars(df, "transactions")
    failures = errors[0].failures
    if raw is not None and (items is not None or cfg.items is None):
        periodic = _raw_periodic_revaluations(raw, items, cfg)
        if periodic is not None:
            errors.insert(1, periodic)
            found = [f for f in (failures, periodic.failures) if f is not None]
            failures = pl.concat(found, how="diagonal_relaxed")
    if len(errors) > 1:
        text = "\n".join(str(e) for e in errors)
        errors = [InputValidationError(text, failures)]
    if raw is not None and state is not None and state.lock_date is not None:
        refuse_invalid_and_backdated(raw, state, errors[0])
    raise errors[0]


def _refuse_moving_average_conversion(frame: pl.DataFrame, moving: pl.Series) -> None:
    """close-semantics §3.8: an item valued at moving average never becomes periodic (its
    on-hand row carries a moving-average value no periodic method could settle)."""
    if moving.is_empty():
        return
    periodic = sorted(m.value for m in PERIODIC_METHODS)
    converted = (
        frame.filter(pl.col("item_id").is_in(moving.implode()) & pl.col("method").is_in(periodic))
        .select("item_id", "method")
        .unique()
        .sort("item_id")
    )
    if converted.is_empty():
        return
    listed = first_named([f"{i} (now {m})" for i, m in converted.iter_rows()])
    msg = (
        f"items valued at moving average by the opening's close cannot change to a periodic "
        f"method (close-semantics §3.8): {listed}; keep them moving_average in items= or the "
        "method keyword"
    )
    raise ConfigError(msg)


def _refuse_unknown_items(wanted: pl.Series, held: pl.Series) -> None:
    """A recalculation limited to items none of the rows (or the opening) hold would do
    nothing, silently: a mistyped id must be named instead."""
    unknown = sorted(set(wanted.to_list()) - set(held.unique().to_list()))
    if wanted.is_empty() or unknown:
        listed = first_named([repr(i) for i in unknown])
        msg = (
            f"item_ids names items that neither the transactions nor the opening hold: {listed}"
            if unknown
            else "item_ids is empty: pass None to recalculate every item"
        )
        raise ConfigError(msg)


def run_parts(
    cfg: CloseConfig, closing_date: dt.date, kind: str, state: OpeningState | None
) -> tuple[tuple[str, ...], str]:
    """The settings half of a run's id: its text parts and prefix."""
    parts = (
        cfg.fingerprint(),
        closing_date.isoformat(),
        kind,
        state.close_id if state is not None else "",
    )
    return parts, "C" if kind == "close" else "R"


def _run_id(
    frame: pl.DataFrame,
    hashes: pl.Series,
    cfg: CloseConfig,
    closing_date: dt.date,
    kind: str,
    state: OpeningState | None,
) -> str:
    parts, prefix = run_parts(cfg, closing_date, kind, state)
    if "frozen" in frame.columns:
        # A recalculation limited to some items (item_ids) differs from one of all items.
        chosen = frame.filter(~pl.col("frozen"))["item_id"].unique().sort()
        parts = (*parts, "items:" + "\x1f".join(chosen.to_list()))
    return content_id(run_digests(frame, hashes, closing_date)["digest"], *parts, prefix=prefix)


def run_digests(frame: pl.DataFrame, hashes: pl.Series, closing_date: dt.date) -> pl.DataFrame:
    """Per item, the digest of the row hashes a run's id is summed from.

    The rows the close reads count: those dated on or before ``closing_date``, and later
    receipts of orders (an output still to come keeps a component's change waiting instead
    of making it late cost, close-semantics §9.1). So a month's close has one id whether its
    input stops at the closing date or runs on into the next month with sales and purchases.
    The digests are per item (:func:`invclose.hashing.group_digests`), so a batched close of
    whole items (``invclose.batched``) gets the same id.
    """
    read = (frame["date"] <= closing_date) | (frame["order_id"].is_not_null() & (frame["qty"] > 0))
    if read.all():
        return group_digests(frame["item_id"], hashes)
    return group_digests(frame["item_id"].filter(read), hashes.filter(read))


def _prepare_run(
    df: Any, date: Any, cfg: CloseConfig, opening: Any, kind: str
) -> tuple[dt.date, OpeningState | None, pl.DataFrame, str]:
    closing_date = parse_date(date)
    state = load_opening(opening, cfg.dims)
    _check_dates(closing_date, state, kind)
    frame = prepare_frame(df, cfg, state, closing_date)
    return (
        closing_date,
        state,
        frame,
        _run_id(frame, frame["row_hash"], cfg, closing_date, kind, state),
    )


def execute_run(
    frame: pl.DataFrame,
    cfg: CloseConfig,
    closing_date: dt.date,
    run_id: str,
    state: OpeningState | None,
    kind: str,
    progress: ProgressCallback | None = None,
    *,
    rows_done: int = 0,
    rows_total: int | None = None,
    part: tuple[int, int] = (0, 1),
    rows: int | None = None,
) -> CloseResult:
    """Kernel then result tables for a prepared ``frame`` (a close or a recalculation).

    ``rows`` is what the run counts as done in its progress (default ``frame.height``; a
    batch of a batched close counts its input rows, not the opening's open rows it adds).
    """
    return _tables(
        [lambda: _kernel(frame, cfg, closing_date, kind)],
        cfg,
        closing_date,
        state,
        kind,
        progress,
        lambda: (run_id, frame["row_hash"]),
        height=frame.height if rows is None else rows,
        rows_done=rows_done,
        rows_total=rows_total,
        part=part,
    )


def _part_kernel(
    parts: list[pl.DataFrame], cfg: CloseConfig, closing_date: dt.date, kind: str
) -> KernelOutput:
    """The kernel over the first of ``parts`` (slices of the sorted rows, numbered by
    ``HASH_ROW``), which it takes off the list."""
    return run_kernel_on(parts.pop(0), list(cfg.dims), closing_date, settle=kind == "close")


def _kernel(
    frame: pl.DataFrame, cfg: CloseConfig, closing_date: dt.date, kind: str
) -> KernelOutput:
    """The kernel over ``frame``, its rows numbered (``HASH_ROW``) for their hashes later."""
    return run_kernel(
        frame.with_row_index(HASH_ROW), list(cfg.dims), closing_date, settle=kind == "close"
    )


def _tables(
    kernels: Sequence[Callable[[], KernelOutput]],
    cfg: CloseConfig,
    closing_date: dt.date,
    state: OpeningState | None,
    kind: str,
    progress: ProgressCallback | None,
    id_and_hashes: Callable[[], tuple[str, pl.Series]],
    *,
    height: int,
    rows_done: int = 0,
    rows_total: int | None = None,
    part: tuple[int, int] = (0, 1),
    posted_accounts: PostedAccounts | None = None,
    part_heights: Sequence[int] = (),
) -> CloseResult:
    """Run ``kernels`` (one, or one per part of the items, :mod:`invclose.parts`) over
    ``height`` input rows and make the result tables, reporting progress.

    The tables are drafted first; ``id_and_hashes`` (the run's id, and the row hash of each
    input row) is called only then, so that they can still be computing meanwhile. A
    kernel's output lives only while its draft is made (at 1e7 rows in one part it holds
    some 3 GB).
    """
    total = height if rows_total is None else rows_total
    whole = len(kernels) == 1
    accounts = normalize_accounts(cfg.accounts)
    drafts: list[Draft] = []
    missing: list[MissingAccountError] = []
    for number, kernel in enumerate(kernels):  # one step per part
        output = kernel()
        if whole:
            # No row is done before its tables are: the count moves at "assemble".
            report(progress, "settle and cost", rows_done, total, *part)
        try:
            drafts.append(
                assemble_draft(
                    output,
                    cfg,
                    closing_date,
                    state,
                    run_kind="close" if kind == "close" else "recalculation",
                    accounts=accounts,
                    posted_accounts=posted_accounts,
                    whole=whole,
                )
            )
        except MissingAccountError as exc:
            if whole:
                raise
            # Every part's rows without accounts, named together as one pass names them.
            missing.append(exc)
        del output
        if not whole:
            # A part's rows are done once its tables are drafted (only joined after the last).
            done = rows_done + sum(part_heights[: number + 1])
            report(progress, "settle and cost", done, total, number + 1, len(kernels))
    if missing:
        raise combined_missing_accounts(missing)
    draft = drafts[0] if whole else joined_draft(drafts, cfg, state)
    del drafts
    result = finish_result(draft, *id_and_hashes())
    finished = (part[0] + 1, part[1]) if whole else (len(kernels), len(kernels))
    report(progress, "assemble", rows_done + height, total, *finished)
    return result


def _run(
    df: Any,
    date: Any,
    cfg: CloseConfig,
    opening: Any,
    kind: str,
    progress: ProgressCallback | None,
    item_ids: list[str] | None = None,
    posted_accounts: PostedAccounts | None = None,
) -> CloseResult:
    closing_date = parse_date(date)
    state = load_opening(opening, cfg.dims)
    _check_dates(closing_date, state, kind)
    # Only rows the opening knows need their hashes before the kernel (to find changed rows);
    # the kernel and the assembly of the tables leave a core mostly idle, so the other rows
    # are hashed, and the run's id summed from the hashes, on a second thread (DuckDB and
    # Polars release the GIL) meanwhile. The id and the hashes go in last (finish_result).
    frame = prepare_frame(df, cfg, state, closing_date, hash_rows=False)
    report(progress, "validate", 0, frame.height)
    if item_ids is not None:
        # One id given as a string is one item, not its characters.
        ids = [item_ids] if isinstance(item_ids, str) else item_ids
        wanted = pl.Series("ids", [str(i) for i in ids], dtype=pl.String)
        _refuse_unknown_items(wanted, frame["item_id"])
        frame = frame.with_columns(frozen=~pl.col("item_id").is_in(wanted.implode()))
    height = frame.height
    rows = [frame]
    del frame  # from here `rows` holds the prepared rows, until the kernel and the hashes have them

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="invclose-hash") as pool:
        pending = pool.submit(_id_and_hashes, rows[0], cfg, closing_date, kind, state)
        # Each row numbered by its place in the hashed frame, then cut into parts of whole
        # items (one part unless the frame is large).
        working = build_working(rows.pop().with_row_index(HASH_ROW), cfg.dims, closing_date)
        parts = working_parts(working)
        del working
        heights = [part.height for part in parts]
        kernels = [partial(_part_kernel, parts, cfg, closing_date, kind) for _ in heights]
        return _tables(
            kernels,
            cfg,
            closing_date,
            state,
            kind,
            progress,
            pending.result,
            height=height,
            posted_accounts=posted_accounts,
            part_heights=heights,
        )


def run_for_ledger(
    df: pl.DataFrame,
    date: dt.date,
    cfg: CloseConfig,
    opening: CloseResult | None,
    kind: str,
    *,
    posted_accounts: PostedAccounts,
    item_ids: list[str] | None = None,
) -> CloseResult:
    """A close (``kind`` "close") or recalculation of a ledger's rows under ``cfg``.

    As :func:`close` and :func:`recalculate`, but each adjustment posts to the accounts its
    row was posted to (``posted_accounts``), found by the mapping only where there are none:
    the mapping in force may have changed since (``Ledger.reconfigure``).
    """
    return _run(df, date, cfg, opening, kind, None, item_ids, posted_accounts)


def run_check(
    df: Any,
    date: Any,
    cfg: CloseConfig,
    opening: Any,
    *,
    posted_accounts: PostedAccounts | None = None,
) -> pl.DataFrame:
    """The pre-close list (:func:`check`) under ``cfg``; for a ledger's rows, with the accounts
    they were posted to (``posted_accounts``, as in :func:`run_for_ledger`)."""
    closing_date, state, frame, run_id = _prepare_run(df, date, cfg, opening, "close")
    dims = list(cfg.dims)
    accounts = normalize_accounts(cfg.accounts)
    # A large frame is checked a part of whole items at a time, as it would be closed.
    parts = working_parts(build_working(frame, dims, closing_date))
    del frame
    logs = []
    while parts:  # one step per part
        output = run_kernel_on(parts.pop(0), dims, closing_date, settle=True)
        logs.append(check_log(output, cfg, closing_date, run_id, accounts, posted_accounts, state))
        del output
    return logs[0] if len(logs) == 1 else joined_log(logs, ["level", *log_order(dims)])


def _id_and_hashes(
    frame: pl.DataFrame,
    cfg: CloseConfig,
    closing_date: dt.date,
    kind: str,
    state: OpeningState | None,
) -> tuple[str, pl.Series]:
    """The run's id and every row's hash (rows the opening knows carry theirs already)."""
    columns = list(input_schema(cfg.dims))
    missing = frame.select(pl.arg_where(pl.col("row_hash").is_null())).to_series()
    if missing.len() == frame.height:
        # No row known yet (a first close): hash the columns as they are, no gather.
        hashes = row_hashes(frame.select(columns), columns, threads=1)
    else:
        computed = row_hashes(frame.select(columns)[missing], columns, threads=1)
        hashes = frame["row_hash"].clone().scatter(missing, computed)
    return _run_id(frame, hashes, cfg, closing_date, kind, state), hashes


def close(
    df: Any,
    date: Any,
    *,
    method: str | None = None,
    dimensions: list[str] | tuple[str, ...] | None = None,
    items: Any = None,
    include_physical_value: bool | None = None,
    accounts: Any = None,
    voucher_detail: str | None = None,
    opening: Any = None,
    config: CloseConfig | None = None,
    progress: ProgressCallback | None = None,
) -> CloseResult:
    """Close the inventory at ``date``: settle issues against receipts and adjust their cost.

    Parameters
    ----------
    df
        Transactions (contract §1): a Polars DataFrame or LazyFrame, a pandas DataFrame, a
        PyArrow table, or a path to Parquet / CSV.
    date
        The closing date: the last day covered.
    method, dimensions, items, include_physical_value, accounts, voucher_detail
        Settings, as in :class:`CloseConfig`; they override ``config``.
    opening
        An earlier ``CloseResult`` (or the directory it was written to) to continue from.
    config
        All settings at once.
    progress
        Called with a :class:`~invclose.progress.ProgressEvent` after each stage (off when
        ``None``; ``invclose.progress.rich_progress()`` draws a bar).

    Returns
    -------
    CloseResult
        The contract's result tables.

    Examples
    --------
    >>> import datetime as dt
    >>> from decimal import Decimal as D
    >>> import polars as pl, invclose
    >>> tx = pl.DataFrame({
    ...     "txn_id": ["r1", "r2", "i1"], "item_id": ["A"] * 3,
    ...     "date": [dt.date(2025, 1, d) for d in (2, 3, 4)],
    ...     "qty": [D("1"), D("1"), D("-1")],
    ...     "amount": [D("10.00"), D("22.00"), D("-16.00")],
    ...     "inventory_account": ["1400"] * 3, "offset_account": ["2100", "2100", "5000"]})
    >>> result = invclose.close(tx, "2025-01-31", method="fifo")
    >>> result.settlements.select("issue_txn_id", "receipt_txn_id", "amount").rows()
    [('i1', 'r1', Decimal('10.00'))]
    >>> result.adjustments.select("txn_id", "adjustment", "cost_delta").rows()
    [('i1', Decimal('6.00'), Decimal('-6.00'))]
    """
    cfg = _config(
        config,
        method=method,
        dimensions=dimensions,
        items=items,
        include_physical_value=include_physical_value,
        accounts=accounts,
        voucher_detail=voucher_detail,
    )
    return _run(df, date, cfg, opening, "close", progress)


def recalculate(
    df: Any,
    date: Any,
    *,
    item_ids: list[str] | None = None,
    method: str | None = None,
    dimensions: list[str] | tuple[str, ...] | None = None,
    items: Any = None,
    include_physical_value: bool | None = None,
    accounts: Any = None,
    voucher_detail: str | None = None,
    opening: Any = None,
    config: CloseConfig | None = None,
    progress: ProgressCallback | None = None,
) -> CloseResult:
    """Adjust issue costs up to ``date`` without settling or locking anything (§10).

    Parameters
    ----------
    df, date, method, dimensions, items, include_physical_value, accounts, voucher_detail,
    opening, config, progress
        As for :func:`close`.
    item_ids
        Only these items (one id as a string, or a list); default every item.

    Returns
    -------
    CloseResult
        The tables of a close with no ``settlements`` (nothing is closed): the
        ``adjustments`` dated ``date`` and their ``vouchers``. It can be the ``opening`` of a
        later run dated on or after it; it passes on the recalculated values and the lock of
        its own opening.

    Examples
    --------
    >>> import datetime as dt
    >>> from decimal import Decimal as D
    >>> import polars as pl, invclose
    >>> tx = pl.DataFrame({
    ...     "txn_id": ["r1", "i1"], "item_id": ["A", "A"],
    ...     "date": [dt.date(2025, 1, 2), dt.date(2025, 1, 4)],
    ...     "qty": [D("2"), D("-1")], "amount": [D("30.00"), D("-12.00")],
    ...     "inventory_account": ["1400"] * 2, "offset_account": ["2100", "5000"]})
    >>> r = invclose.recalculate(tx, "2025-01-15")
    >>> r.settlements.height, r.adjustments["adjustment"].to_list()
    (0, [Decimal('-3.00')])
    """
    cfg = _config(
        config,
        method=method,
        dimensions=dimensions,
        items=items,
        include_physical_value=include_physical_value,
        accounts=accounts,
        voucher_detail=voucher_detail,
    )
    return _run(df, date, cfg, opening, "recalculation", progress, item_ids)


def check(
    df: Any,
    date: Any,
    *,
    method: str | None = None,
    dimensions: list[str] | tuple[str, ...] | None = None,
    items: Any = None,
    include_physical_value: bool | None = None,
    accounts: Any = None,
    voucher_detail: str | None = None,
    opening: Any = None,
    config: CloseConfig | None = None,
) -> pl.DataFrame:
    """The pre-close list (§13): what a close at ``date`` would log, without closing.

    Parameters
    ----------
    df, date, method, dimensions, items, include_physical_value, accounts, voucher_detail,
    opening, config
        As for :func:`close`. ``config=CloseConfig(max_deviation=...)`` sets the share by
        which a receipt's unit cost may differ from its group's median before it is listed
        (default 0.5).

    Returns
    -------
    polars.DataFrame
        The columns of ``log``: the rows the close would log (every issue that would stay
        unsettled, with the reason), a ``missing_account`` row (level ``error``) per row that
        would need an account it cannot find, and ``cost_price_deviation`` rows (warning) for
        financial receipts whose unit cost is further than ``max_deviation`` from their
        group's median. Nothing is written or locked.

    Examples
    --------
    >>> import datetime as dt
    >>> from decimal import Decimal as D
    >>> import polars as pl, invclose
    >>> tx = pl.DataFrame({
    ...     "txn_id": ["r1", "i1"], "item_id": ["A", "A"],
    ...     "date": [dt.date(2025, 1, 2), dt.date(2025, 1, 4)],
    ...     "qty": [D("2"), D("-3")], "amount": [D("30.00"), D("-45.00")]})
    >>> for row in invclose.check(tx, "2025-01-31").select("code", "txn_id", "qty").rows():
    ...     print(row)
    ('insufficient_receipts', 'i1', Decimal('1.000000'))
    ('negative_on_hand', None, Decimal('-1.000000'))
    """
    cfg = _config(
        config,
        method=method,
        dimensions=dimensions,
        items=items,
        include_physical_value=include_physical_value,
        accounts=accounts,
        voucher_detail=voucher_detail,
    )
    return run_check(df, date, cfg, opening)


def _compared_figures(output: KernelOutput) -> pl.DataFrame:
    """Per item of one method's run (or part): ``issued`` and ``cost`` of its financial
    issues, ``qty`` and ``value`` on hand after it (kernel units)."""
    issues = output.rows.filter(
        pl.col("in_scope")
        & pl.col("fin")
        & ~pl.col("is_receipt")
        & ~pl.col("is_virtual_new")
        & ~pl.col("txn_id").str.starts_with("~")
        & ~((pl.col("kind") == "transfer") & pl.col("order_id").is_not_null())
    )
    # What this run issues: a row's open part at the start (the whole row, unless an opening
    # closed part of it), at its value after the run.
    # An item's figures add up its groups (one per financial dimension value), each bounded
    # to fit an int64 but not their sum: 128-bit sums.
    wide = pl.Int128
    cogs = issues.group_by("item_id").agg(
        # (Polars has no negation of an Int128: 0 - x.)
        issued=(0 - pl.col("q0").cast(wide)).sum(),
        cost=(0 - (pl.col("v0").cast(wide) + pl.col("adjustment"))).sum(),
    )
    ending = output.balances.group_by("item_id").agg(
        qty=pl.col("qty").cast(wide).sum(), value=pl.col("value").cast(wide).sum()
    )
    return (
        cogs.join(ending, on="item_id", how="full", coalesce=True)
        .with_columns(pl.col("issued", "cost", "qty", "value").fill_null(0))
        .select("item_id", "issued", "cost", "qty", "value")
    )


def compare(
    df: Any,
    date: Any,
    *,
    methods: str | list[str] | tuple[str, ...] | None = None,
    items: Any = None,
    dimensions: list[str] | tuple[str, ...] | None = None,
    include_physical_value: bool | None = None,
    opening: Any = None,
    config: CloseConfig | None = None,
    progress: ProgressCallback | None = None,
) -> pl.DataFrame:
    """The same data closed under several methods, side by side (a what-if for controllers).

    Each method closes every item in its own kernel run (in parts of whole items past
    :data:`invclose.parts.SPLIT_ABOVE` rows, as :func:`close` does), so its orders feed only
    its own copy of the items and a large frame is never repeated once per method in memory.
    Nothing is posted, so no accounts are needed.

    Parameters
    ----------
    df, date, items, dimensions, include_physical_value, opening, config
        As for :func:`close` (an item's ``method`` in ``items`` is replaced by each method
        compared; its item group and ``include_physical_value`` apply).
    methods
        The methods to compare, each applied to every item (one name as a string, or a
        list; default the five periodic methods). An empty list is refused.
    progress
        Called with a :class:`~invclose.progress.ProgressEvent` after the validation
        (``"validate"``) and after each method's run or part of it (``"settle and cost"``):
        the rows count once per method, the parts are every method's parts.

    Returns
    -------
    polars.DataFrame
        One row per item and method: ``issued_qty``, ``cost_of_goods`` (final cost of the
        financial issues dated on or before ``date``, positive; issues of transfer orders
        excluded; with ``opening``, of the part of each issue still open in it),
        ``ending_qty`` and ``ending_value`` (the item's balances summed).

    Examples
    --------
    >>> import datetime as dt
    >>> from decimal import Decimal as D
    >>> import polars as pl, invclose
    >>> tx = pl.DataFrame({
    ...     "txn_id": ["r1", "r2", "s1"], "item_id": ["A"] * 3,
    ...     "date": [dt.date(2025, 1, d) for d in (1, 2, 3)],
    ...     "qty": [D("1"), D("1"), D("-1")], "amount": [D("10.00"), D("30.00"), D("-20.00")]})
    >>> invclose.compare(tx, "2025-01-31", methods=["fifo", "lifo"]).select(
    ...     "method", "cost_of_goods", "ending_value").rows()
    [('fifo', Decimal('10.00'), Decimal('30.00')), ('lifo', Decimal('30.00'), Decimal('10.00'))]
    """
    from invclose.config import parse_method
    from invclose.kernel.money import from_cents, from_micro

    if isinstance(methods, str):
        methods = [methods]
    if methods is not None and not methods:
        msg = "methods is empty; name at least one method, or leave it out to compare all five"
        raise ConfigError(msg)
    # Each method once (a repeated one would be closed twice under one key, summing twice).
    wanted = list(
        dict.fromkeys(parse_method(m).value for m in (methods or sorted(PERIODIC_METHODS)))
    )
    cfg = _config(
        config, items=items, dimensions=dimensions, include_physical_value=include_physical_value
    )
    closing_date = parse_date(date)
    state = load_opening(opening, cfg.dims)
    _check_dates(closing_date, state, "close")
    # No run id here: nothing is kept, so the rows need no hashes.
    frame = prepare_frame(df, cfg, state, closing_date, hash_rows=False)
    dims = list(cfg.dims)
    total = frame.height * len(wanted)
    report(progress, "validate", 0, total, 0, len(wanted))
    # Sorted and cut once: neither depends on the method.
    parts = working_parts(build_working(frame, dims, closing_date))
    del frame
    figures = []
    done, parts_done, parts_total = 0, 0, len(parts) * len(wanted)
    for method in wanted:
        # One method at a time: rows repeated once per method in one run met across their
        # copies through the orders (a production order fed every method's output with the
        # components of all of them), and would hold the frame once per method.
        for part in parts:
            output = run_kernel_on(with_method(part, method), dims, closing_date, settle=True)
            figures.append(_compared_figures(output).with_columns(method=pl.lit(method)))
            del output
            done, parts_done = done + part.height, parts_done + 1
            report(progress, "settle and cost", done, total, parts_done, parts_total)
    table = (
        pl.concat(figures, how="vertical_relaxed")
        .group_by("item_id", "method")
        .agg(pl.col("issued", "cost", "qty", "value").sum())
    )
    order = {m: k for k, m in enumerate(wanted)}
    return table.select(
        "item_id",
        "method",
        issued_qty=from_micro(pl.col("issued")),
        cost_of_goods=from_cents(pl.col("cost")),
        ending_qty=from_micro(pl.col("qty")),
        ending_value=from_cents(pl.col("value")),
    ).sort(["item_id", pl.col("method").replace_strict(order, return_dtype=pl.Int64)])
