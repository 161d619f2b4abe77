"""The audit trail: content digests, the hash chain of runs, and ``verify()``.

Hash chain
----------
Every run stores ``input_hash`` (SHA-256 of what it was given: the posted rows, or the close
id, opening and configuration of a close), ``output_hash`` (SHA-256 over the digests of the
rows it stored in each table of :data:`~invclose.ledger.store.HASHED_TABLES`) and ``hash`` =
SHA-256 of the run's fields (:data:`RUN_HASH_FIELDS`, canonical text of
:mod:`invclose.hashing`), which include ``prev_hash``, the previous run's ``hash`` (for the
first run, the file's genesis hash, itself a hash of the configuration). A table digest is the
SHA-256 of the sorted row hashes of its rows, so it does not depend on storage order.
``status`` is not hashed (a reversal changes it); instead a run must be ``reversed`` exactly
when a later reversal run names it.

Checks
------
:func:`verify_checks` returns one row per check (``check``, ``ok``, ``detail``):

``hash_chain``           the chain links, every run hash and output hash recomputes, every
                         posting's input hash recomputes, statuses match the reversals
``subledger_equals_gl``  the ``reconciliation`` view shows 0.00 on every inventory account
``vouchers_balanced``    per (run, voucher) debit = credit; no negative or two-sided line
``quantity_conserved``   per group: the quantities of the rows the state in force knows
                         (by row hash) = its open quantities
``value_conserved``      per group: their carried values (amount plus every adjustment of
                         that row version) plus adjustments of virtual rows = its open values
``carried_values``       every open row's ``carried_value`` = amount plus its adjustments
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any, cast

import polars as pl

from invclose.hashing import canonical_text, row_hashes
from invclose.ledger.digests import BATCH, SortedHashes, add_by_run, joined_digest, sha256_text
from invclose.ledger.store import HASHED_TABLES, Store, quote, runs_schema
from invclose.schemas import MONEY, QTY, input_schema

__all__ = [
    "RUN_HASH_FIELDS",
    "SortedHashes",
    "digest",
    "genesis_hash",
    "joined_digest",
    "output_hashes",
    "run_hash",
    "sha256_text",
    "verify_checks",
]

#: Fields of a ``runs`` row that enter its hash (everything but status and bookkeeping).
RUN_HASH_FIELDS = (
    "run_id",
    "kind",
    "date",
    "close_id",
    "comment",
    "reverses",
    "opening_run",
    "state_run",
    "lock_date",
    "state_date",
    "state_lock",
    "state_kind",
    "config_run",
    "input_hash",
    "output_hash",
    "prev_hash",
)

_EMPTY = hashlib.sha256(b"").hexdigest()
_MAX_LISTED = 10


def genesis_hash(fingerprint: str) -> str:
    """The ``prev_hash`` of the first run: a hash of the file's first configuration."""
    return sha256_text("invclose-ledger\x1e" + fingerprint)


def digest(store: Store, frame: pl.DataFrame, columns: list[str] | None = None) -> str:
    """SHA-256 of the sorted row hashes of ``frame`` over ``columns`` (default: all)."""
    if frame.is_empty():
        return _EMPTY
    return joined_digest(row_hashes(frame, columns or frame.columns))


def _stream(store: Store, sql: str, params: list[Any] | None = None) -> Iterator[pl.DataFrame]:
    """The rows of a query in frames of at most ``BATCH`` rows, typed as ``Store.query``.

    The query streams on the store's connection (inside its transaction, so it sees what the
    transaction wrote): nothing else may run on that connection until the iterator is done.
    """
    relation = store.con.sql(sql, params=params) if params else store.con.sql(sql)
    for batch in relation.to_arrow_reader(BATCH):
        if batch.num_rows:
            yield cast("pl.DataFrame", pl.from_arrow(batch))


def _digests_by_run(
    store: Store, sql: str, params: list[Any] | None = None
) -> dict[int, SortedHashes]:
    """Per ``run_id``: the row hashes (over every column) of the rows of ``sql``, streamed."""
    out: dict[int, SortedHashes] = {}
    for frame in _stream(store, sql, params):
        add_by_run(out, frame)
    return out


def output_hashes(store: Store, run_id: int | None = None) -> dict[int, str]:
    """The output hash of every run (or of ``run_id``) recomputed from the stored rows.

    Tables are read in slices of ``BATCH`` rows (hashed in the process while the slices
    stream), so memory holds 32 bytes per stored row, not the tables and their canonical texts.
    """
    per_table: dict[str, dict[int, str]] = {}
    for table in HASHED_TABLES:
        sql = f"SELECT * FROM {quote(table)}"
        params = None
        if run_id is not None:
            sql += " WHERE run_id = ?"
            params = [int(run_id)]
        by_run = _digests_by_run(store, sql, params)
        per_table[table] = {rid: acc.digest() for rid, acc in by_run.items()}
        del by_run
    if run_id is not None:
        runs = [int(run_id)]
    else:
        runs = [int(r) for r in store.query("SELECT run_id FROM runs")["run_id"].to_list()]
    return {
        rid: sha256_text("\n".join(f"{t}={per_table[t].get(rid, _EMPTY)}" for t in HASHED_TABLES))
        for rid in runs
    }


def written_output_hash(store: Store, run_id: int) -> str:
    """The output hash of ``run_id`` from the rows it inserted in this transaction.

    Equal to :func:`output_hashes` over the stored rows (the frames were inserted exactly as
    typed, and :meth:`Store.insert` kept their row hashes), without reading them back;
    ``verify`` recomputes it from the file.
    """
    parts = [f"{t}={store.written_digest(run_id, t)}" for t in HASHED_TABLES]
    return sha256_text("\n".join(parts))


def run_hash(run: dict[str, Any]) -> str:
    """The hash of one ``runs`` row (a dict with at least :data:`RUN_HASH_FIELDS`)."""
    schema = runs_schema()
    frame = pl.DataFrame(
        [{f: run.get(f) for f in RUN_HASH_FIELDS}],
        schema={f: schema[f] for f in RUN_HASH_FIELDS},
    )
    text = str(canonical_text(frame, list(RUN_HASH_FIELDS)).item())
    return sha256_text(text)


def _row(check: str, problems: list[str], ok_detail: str) -> dict[str, Any]:
    if not problems:
        return {"check": check, "ok": True, "detail": ok_detail}
    shown = "; ".join(problems[:_MAX_LISTED])
    more = f"; ... and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
    return {"check": check, "ok": False, "detail": shown + more}


def _check_configs(store: Store, genesis: str) -> list[str]:
    """Every stored configuration rebuilds to its fingerprint, which its run recorded."""
    problems: list[str] = []
    config_runs = store.query("SELECT run_id, fingerprint FROM ledger_config ORDER BY run_id")
    recorded = store.query("SELECT run_id, input_hash FROM runs WHERE kind = 'config'")
    inputs = dict(recorded.iter_rows())
    for run_id, fingerprint in config_runs.iter_rows():
        if store.load_config(int(run_id))[1].fingerprint() != fingerprint:
            problems.append(f"configuration of run {run_id} does not match its fingerprint")
        if run_id == 0 and genesis_hash(str(fingerprint)) != genesis:
            problems.append("the genesis hash does not match the first configuration")
        if run_id != 0 and inputs.get(run_id) != sha256_text("config\x1e" + str(fingerprint)):
            problems.append(f"configuration of run {run_id} does not match its run's input hash")
    return problems


def _check_chain(store: Store, genesis: str) -> dict[str, Any]:
    runs = store.query("SELECT * FROM runs ORDER BY run_id")
    outputs = output_hashes(store)
    posted: dict[int, SortedHashes] = {}
    for frame in _stream(store, "SELECT run_id, row_hash FROM transactions"):
        for (rid,), group in frame.group_by("run_id"):
            posted.setdefault(int(str(rid)), SortedHashes()).add(group["row_hash"])
    inputs = {rid: acc.digest() for rid, acc in posted.items()}
    del posted
    problems = _check_configs(store, genesis)
    prev = genesis
    reversed_by = {
        int(r): True for r in runs.filter(pl.col("kind") == "reversal")["reverses"].to_list()
    }
    for expected_id, run in enumerate(runs.iter_rows(named=True), start=1):
        rid = int(run["run_id"])
        if rid != expected_id:
            problems.append(f"run {rid}: expected run id {expected_id} (a run is missing)")
        if run["prev_hash"] != prev:
            problems.append(f"run {rid}: prev_hash does not match the previous run's hash")
        if outputs.get(rid) != run["output_hash"]:
            problems.append(f"run {rid}: stored rows do not match its output hash")
        if run["kind"] == "post" and inputs.get(rid, _EMPTY) != run["input_hash"]:
            problems.append(f"run {rid}: posted rows do not match its input hash")
        if run_hash(run) != run["hash"]:
            problems.append(f"run {rid}: its hash does not recompute")
        want = "reversed" if reversed_by.get(rid) else "active"
        if run["status"] != want:
            problems.append(f"run {rid}: status {run['status']!r} but should be {want!r}")
        prev = str(run["hash"])
    head = prev[:16] if runs.height else "(no runs)"
    return _row("hash_chain", problems, f"{runs.height} runs chained; head {head}")


def _check_reconciliation(store: Store) -> dict[str, Any]:
    rec = store.query("SELECT * FROM reconciliation")
    bad = rec.filter(pl.col("difference") != 0)
    problems = [
        f"account {a}: sub-ledger {s} vs GL {g} (difference {d})"
        for a, s, g, d in bad.select(
            "account", "subledger_value", "gl_balance", "difference"
        ).iter_rows()
    ]
    total = rec["subledger_value"].sum() if rec.height else 0
    return _row(
        "subledger_equals_gl",
        problems,
        f"{rec.height} inventory accounts reconcile to the cent (value {total})",
    )


def _check_vouchers(store: Store) -> dict[str, Any]:
    bad = store.query(
        """
        SELECT run_id, voucher_id, SUM(debit) AS debit, SUM(credit) AS credit,
               COUNT(*) FILTER (WHERE debit < 0 OR credit < 0 OR (debit <> 0 AND credit <> 0))
                   AS bad_lines
        FROM vouchers GROUP BY run_id, voucher_id
        HAVING SUM(debit) <> SUM(credit) OR bad_lines > 0
        ORDER BY run_id, voucher_id
        """
    )
    n = store.scalar("SELECT count(DISTINCT (run_id, voucher_id)) FROM vouchers")
    problems = [
        f"run {r} voucher {v}: debit {d} credit {c}, {b} malformed lines"
        for r, v, d, c, b in bad.iter_rows()
    ]
    return _row("vouchers_balanced", problems, f"{n} vouchers balance")


def _state_rows(store: Store, state_run: int, dims: tuple[str, ...]) -> pl.DataFrame:
    """The state's open rows, with the row hash of their input columns."""
    columns = list(input_schema(dims))
    opened = store.rows("open_items", state_run, dims)
    return opened.with_columns(row_hash=row_hashes(opened, columns))


#: The real rows the state knows (open rows, then closed rows, each in storage order) with
#: ``part``/``pos`` for that order; ``{opened}`` is the registered open rows.
_KNOWN_SQL = """
SELECT part, pos, txn_id, row_hash FROM (
    SELECT 0 AS part, CAST(pos AS BIGINT) AS pos, txn_id, row_hash FROM {opened}
    UNION ALL
    SELECT 1 AS part, rowid AS pos, txn_id, row_hash FROM closed_items WHERE run_id = ?
)
WHERE NOT starts_with(txn_id, '~')
"""


def _known_rows(
    store: Store, opened: str, state_run: int, keys: list[str]
) -> tuple[list[str], pl.DataFrame]:
    """Rows the state knows that the ledger lacks, and per group the known quantity and value.

    Joined in DuckDB (the ledger's rows never come into memory): each known row is matched to
    the posted row version with its row hash; ``missing`` lists the ``txn_id`` of known rows
    that match none (in the order of the state), and the groups sum the matched versions'
    quantities and carried values (amount plus every adjustment of that version).
    """
    known = _KNOWN_SQL.format(opened=quote(opened))
    missing = store.query(
        f"WITH known AS ({known}) "
        "SELECT k.txn_id FROM known AS k "
        "LEFT JOIN transactions AS t ON t.row_hash = k.row_hash "
        "WHERE t.item_id IS NULL ORDER BY k.part, k.pos",
        [int(state_run)],
    )["txn_id"].to_list()
    columns = ", ".join(f"t.{quote(k)}" for k in keys)
    left = store.query(
        f"WITH known AS ({known}), "
        "by_version AS (SELECT version_hash AS row_hash, SUM(adjustment) AS adjusted "
        "FROM adjustments WHERE version_hash IS NOT NULL GROUP BY ALL) "
        f"SELECT {columns}, CAST(SUM(t.qty) AS DECIMAL(38, 6)) AS known_qty, "
        "CAST(SUM(CAST(t.amount + COALESCE(b.adjusted, 0) AS DECIMAL(38, 2))) AS DECIMAL(38, 2)) "
        "AS known_value "
        "FROM known AS k JOIN transactions AS t ON t.row_hash = k.row_hash "
        "LEFT JOIN by_version AS b ON b.row_hash = k.row_hash "
        f"WHERE t.item_id IS NOT NULL GROUP BY {columns}",
        [int(state_run)],
    )
    return missing, left.select(
        *keys, pl.col("known_qty").cast(QTY), pl.col("known_value").cast(MONEY)
    )


def _check_state(
    store: Store, state_run: int | None, dims: tuple[str, ...]
) -> list[dict[str, Any]]:
    names = ("quantity_conserved", "value_conserved", "carried_values")
    if state_run is None:
        return [_row(n, [], "no close or recalculation in force") for n in names]
    keys = ["item_id", *dims]
    opened = _state_rows(store, state_run, dims)
    name = "__invclose_ledger_open_rows"
    rows = opened.select("txn_id", "row_hash").with_row_index("pos")
    with store.registered(name, rows) as table:
        missing, left = _known_rows(store, name, state_run, keys)
        by_version = store.query(
            "SELECT version_hash AS row_hash, SUM(adjustment) AS adjusted FROM adjustments "
            f"WHERE version_hash IN (SELECT row_hash FROM {table}) GROUP BY ALL"
        )
    virtual_adj = store.query(
        "SELECT " + ", ".join(quote(k) for k in keys) + ", SUM(adjustment) AS virtual_adjusted "
        "FROM adjustments WHERE starts_with(txn_id, '~') GROUP BY ALL"
    )
    right = opened.group_by(keys).agg(
        pl.col("open_qty").sum().cast(QTY).alias("open_qty"),
        pl.col("open_value").sum().cast(MONEY).alias("open_value"),
    )
    groups = (
        left.join(right, on=keys, how="full", coalesce=True, nulls_equal=True)
        .join(virtual_adj, on=keys, how="left", nulls_equal=True)
        .with_columns(
            [
                pl.col(c).fill_null(0)
                for c in ("known_qty", "known_value", "open_qty", "open_value", "virtual_adjusted")
            ]
        )
    )
    label = pl.concat_str([pl.col(k).cast(pl.String).fill_null("∅") for k in keys], separator="/")
    qty_bad = groups.filter(pl.col("known_qty") != pl.col("open_qty")).select(
        label.alias("g"), "known_qty", "open_qty"
    )
    value_bad = groups.filter(
        pl.col("known_value") + pl.col("virtual_adjusted") != pl.col("open_value")
    ).select(label.alias("g"), "known_value", "virtual_adjusted", "open_value")
    qty_problems = [f"rows of run {state_run}'s state not in the ledger: {t}" for t in missing]
    qty_problems += [f"group {g}: rows {k} vs open {o}" for g, k, o in qty_bad.iter_rows()]
    value_problems = [
        f"group {g}: carried {k} + virtual adjustments {v} vs open value {o}"
        for g, k, v, o in value_bad.iter_rows()
    ]
    virtual_by_row = store.query(
        "SELECT txn_id, SUM(adjustment) AS v_adj FROM adjustments "
        "WHERE starts_with(txn_id, '~') GROUP BY ALL"
    )
    carried = (
        opened.join(by_version, on="row_hash", how="left")
        .join(virtual_by_row, on="txn_id", how="left")
        .with_columns(
            expected=pl.col("amount")
            + pl.when(pl.col("txn_id").str.starts_with("~"))
            .then(pl.col("v_adj").fill_null(0))
            .otherwise(pl.col("adjusted").fill_null(0))
        )
        .filter(pl.col("expected") != pl.col("carried_value"))
    )
    carried_problems = [
        f"{t}: carried {c} but amount plus adjustments is {e}"
        for t, c, e in carried.select("txn_id", "carried_value", "expected").iter_rows()
    ]
    n_groups = groups.height
    return [
        _row("quantity_conserved", qty_problems, f"{n_groups} groups of run {state_run}'s state"),
        _row("value_conserved", value_problems, f"{n_groups} groups of run {state_run}'s state"),
        _row(
            "carried_values",
            carried_problems,
            f"{opened.height} open rows match the adjustments ledger",
        ),
    ]


def verify_checks(
    store: Store, state_run: int | None, dims: tuple[str, ...], genesis: str
) -> pl.DataFrame:
    """Run every check; one row per check (``check``, ``ok``, ``detail``)."""
    rows = [
        _check_chain(store, genesis),
        _check_reconciliation(store),
        _check_vouchers(store),
        *_check_state(store, state_run, dims),
    ]
    return pl.DataFrame(rows, schema={"check": pl.String, "ok": pl.Boolean, "detail": pl.String})
