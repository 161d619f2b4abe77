"""The cumulative-axes matcher ``merge_axes``: hand-worked pieces, and equality with the
previous (pure Polars) implementation on random inputs."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invclose.kernel.matching import merge_axes
from invclose.kernel.prepare import running_sum, sort_order

SCHEMA = {"issue_pos": pl.Int64, "receipt_pos": pl.Int64, "qty": pl.Int64, "rank": pl.Int64}
Piece = tuple[int, int, int, int]


# --------------------------------------------------------------------------------------------
# Previous implementation, kept verbatim as the oracle: concatenate both boundary lists, sort
# them by (gid, end) and backward-fill the next receipt and issue.
# --------------------------------------------------------------------------------------------


def _sorted_polars(frame: pl.DataFrame, keys: list[str], *, ties: bool = False) -> pl.DataFrame:
    packed = sort_order(frame, keys)
    if packed is None or (packed[1] and not ties):
        return frame.sort(keys)
    return frame.rechunk()[packed[0]]


def _merge_axes_polars(receipts: pl.DataFrame, issues: pl.DataFrame) -> pl.DataFrame:
    """The previous ``merge_axes`` (before the compiled merge loop)."""
    r = _sorted_polars(receipts, ["gid", "draw"]).with_columns(end=running_sum("gid", "rem"))
    issue_order = "draw" if "draw" in issues.columns else "pos"
    i = _sorted_polars(issues, ["gid", issue_order]).with_columns(end=running_sum("gid", "rem"))
    events = pl.concat(
        [
            r.select(
                "gid",
                "end",
                r_pos=pl.col("pos"),
                r_gid=pl.col("gid"),
                i_pos=pl.lit(None, pl.Int64),
                i_gid=pl.lit(None, pl.Int64),
            ),
            i.select(
                "gid",
                "end",
                r_pos=pl.lit(None, pl.Int64),
                r_gid=pl.lit(None, pl.Int64),
                i_pos=pl.col("pos"),
                i_gid=pl.col("gid"),
            ),
        ]
    )
    events = _sorted_polars(events, ["gid", "end"], ties=True)
    first = pl.col("gid").ne_missing(pl.col("gid").shift(1))
    events = events.with_columns(
        prev=pl.when(first).then(0).otherwise(pl.col("end").shift(1)),
        r_pos=pl.col("r_pos").backward_fill(),
        r_gid=pl.col("r_gid").backward_fill(),
        i_pos=pl.col("i_pos").backward_fill(),
        i_gid=pl.col("i_gid").backward_fill(),
    )
    pieces = events.with_row_index("rank").filter(
        (pl.col("end") > pl.col("prev"))
        & (pl.col("r_gid") == pl.col("gid"))
        & (pl.col("i_gid") == pl.col("gid"))
    )
    return pieces.select(
        issue_pos=pl.col("i_pos"),
        receipt_pos=pl.col("r_pos"),
        qty=pl.col("end") - pl.col("prev"),
        rank=pl.col("rank").cast(pl.Int64),
    )


# --------------------------------------------------------------------------------------------
# Hand-worked examples
# --------------------------------------------------------------------------------------------


def _frame(rows: list[tuple[int, ...]], columns: list[str]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=dict.fromkeys(columns, pl.Int64), orient="row")


def _receipts(rows: list[tuple[int, int, int, int]]) -> pl.DataFrame:
    """Receipts from (gid, pos, rem, draw) rows."""
    return _frame(rows, ["gid", "pos", "rem", "draw"])


def _issues(rows: list[tuple[int, ...]]) -> pl.DataFrame:
    """Issues from (gid, pos, rem) rows, or (gid, pos, rem, draw) rows."""
    columns = ["gid", "pos", "rem", "draw"]
    return _frame(rows, columns[: len(rows[0])] if rows else columns[:3])


@pytest.mark.parametrize(
    ("receipts", "issues", "expected"),
    [
        pytest.param(
            # Axes: receipts end at 5, 10; the issue at 7. Events r0@5, i@7, r1@10.
            _receipts([(0, 0, 5, 0), (0, 1, 5, 1)]),
            _issues([(0, 2, 7)]),
            [(2, 0, 5, 0), (2, 1, 2, 1)],
            id="fifo-two-receipts-one-issue",
        ),
        pytest.param(
            # Both axes end at 3 and 7: each tie's second event is an empty piece (ranks 1, 3).
            _receipts([(0, 0, 3, 0), (0, 1, 4, 1)]),
            _issues([(0, 10, 3), (0, 11, 4)]),
            [(10, 0, 3, 0), (11, 1, 4, 2)],
            id="ties-at-every-boundary",
        ),
        pytest.param(
            # Receipts end at 2, 5; issues at 5, 6: tie at 5 (ranks 1, 2), then an issue short
            # of receipts (rank 3, no receipt left in the group: dropped).
            _receipts([(0, 0, 2, 0), (0, 1, 3, 1)]),
            _issues([(0, 5, 5), (0, 6, 1)]),
            [(5, 0, 2, 0), (5, 1, 3, 1)],
            id="tie-then-issue-shortage",
        ),
        pytest.param(
            # gid 0: tie at 4 (ranks 0, 1). gid 1, receipts only: ranks 2, 3, no pieces.
            # gid 2: issues end at 2, 4 (ranks 4, 5), the receipt at 5 (rank 6, dropped).
            _receipts([(0, 0, 4, 0), (1, 2, 3, 0), (1, 3, 2, 1), (2, 4, 5, 0)]),
            _issues([(0, 1, 4), (2, 5, 2), (2, 6, 2)]),
            [(1, 0, 4, 0), (5, 4, 2, 4), (6, 4, 2, 5)],
            id="receipt-only-group-between-matched-groups",
        ),
        pytest.param(
            # gid 0: tie at 1 (ranks 0, 1). gid 1, issues only: ranks 2, 3, no pieces.
            # gid 3: the issue ends at 4 (rank 4), the receipt at 6 (rank 5, dropped).
            _receipts([(0, 0, 1, 0), (3, 4, 6, 0)]),
            _issues([(0, 1, 1), (1, 2, 5), (1, 3, 5), (3, 5, 4)]),
            [(1, 0, 1, 0), (5, 4, 4, 4)],
            id="issue-only-group-between-matched-groups",
        ),
        pytest.param(
            # lifo: draw = -pos, so receipt 1 (end 3) is drawn before receipt 0 (end 7).
            _receipts([(0, 0, 4, 0), (0, 1, 3, -1)]),
            _issues([(0, 2, 5)]),
            [(2, 1, 3, 0), (2, 0, 2, 1)],
            id="lifo-draw-order",
        ),
        pytest.param(
            # Issues drawn by their own ``draw``: issue 6 (end 3) before issue 5 (end 5).
            _receipts([(0, 0, 10, 0)]),
            _issues([(0, 5, 2, 1), (0, 6, 3, 0)]),
            [(6, 0, 3, 0), (5, 0, 2, 1)],
            id="issue-draw-column",
        ),
        pytest.param(_receipts([]), _issues([]), [], id="both-empty"),
        pytest.param(_receipts([(0, 0, 5, 0)]), _issues([]), [], id="no-issues"),
        pytest.param(_receipts([]), _issues([(0, 1, 5)]), [], id="no-receipts"),
    ],
)
def test_merge_axes_hand_worked(
    receipts: pl.DataFrame, issues: pl.DataFrame, expected: list[Piece]
) -> None:
    """Pieces (issue_pos, receipt_pos, qty, rank) worked out by hand, in event order."""
    result = merge_axes(receipts, issues)
    assert result.schema == pl.Schema(SCHEMA)
    assert result.rows() == expected
    assert result.equals(_merge_axes_polars(receipts, issues))


# --------------------------------------------------------------------------------------------
# Property: the compiled merge equals the previous implementation
# --------------------------------------------------------------------------------------------


@st.composite
def _axes(draw: st.DrawFn) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Random receipts and issues over a few gids, rows shuffled, unique ``pos``."""
    gids = draw(st.lists(st.integers(-3, 6), min_size=0, max_size=4, unique=True))
    rems = st.lists(st.integers(1, 20), max_size=5)
    r_rows = [(g, rem) for g in gids for rem in draw(rems)]
    i_rows = [(g, rem) for g in gids for rem in draw(rems)]
    n = len(r_rows) + len(i_rows)
    pos = draw(st.permutations(range(n)))
    r_draw = draw(st.permutations(range(len(r_rows))))
    sign = draw(st.sampled_from([1, -1]))  # lifo draws are negative
    receipts = pl.DataFrame(
        {
            "gid": [g for g, _ in r_rows],
            "pos": pos[: len(r_rows)],
            "rem": [rem for _, rem in r_rows],
            "draw": [sign * d for d in r_draw],
        },
        schema=dict.fromkeys(["gid", "pos", "rem", "draw"], pl.Int64),
    )
    issues = pl.DataFrame(
        {"gid": [g for g, _ in i_rows], "pos": pos[len(r_rows) :], "rem": [r for _, r in i_rows]},
        schema=dict.fromkeys(["gid", "pos", "rem"], pl.Int64),
    )
    if draw(st.booleans()):
        i_draw = draw(st.permutations(range(len(i_rows))))
        issues = issues.with_columns(draw=pl.Series(i_draw, dtype=pl.Int64))
    # The matcher sorts its inputs itself: feed it the rows in any order.
    return _shuffled(receipts, draw), _shuffled(issues, draw)


def _shuffled(frame: pl.DataFrame, draw: st.DrawFn) -> pl.DataFrame:
    order = draw(st.permutations(range(frame.height)))
    return frame[pl.Series(order, dtype=pl.Int64)]


@settings(max_examples=200)
@given(_axes())
def test_merge_axes_equals_polars_implementation(axes: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    """Same pieces, ranks, row order and dtypes as the previous implementation."""
    receipts, issues = axes
    result = merge_axes(receipts, issues)
    expected = _merge_axes_polars(receipts, issues)
    assert result.schema == expected.schema == pl.Schema(SCHEMA)
    assert result.equals(expected)
