"""Group numbering (``kernel.group_codes``): sorted key order, nulls first, hash never trusted."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from invclose.kernel.group_codes import group_codes


def test_groups_are_numbered_in_sorted_key_order_with_nulls_first() -> None:
    frame = pl.DataFrame(
        {
            "item_id": ["B", "A", "B", "A", None, "B"],
            "site": ["S2", "S1", "S1", "S1", "S1", None],
        }
    )
    # Distinct (item, site) sorted, nulls first: (None, S1)=0, (A, S1)=1, (B, None)=2,
    # (B, S1)=3, (B, S2)=4.
    assert group_codes(frame, ["item_id", "site"]).to_list() == [4, 1, 3, 1, 0, 2]


def test_a_shared_hash_falls_back_to_the_exact_numbering(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every row hashes alike, as if all key tuples collided: the representatives cannot stand
    # for their rows, and the codes must still be exact.
    monkeypatch.setattr(
        pl.DataFrame,
        "hash_rows",
        lambda self, *a, **k: pl.Series([7] * self.height, dtype=pl.UInt64),
    )
    frame = pl.DataFrame({"item_id": ["C", "A", "C", "B"]})
    assert group_codes(frame, ["item_id"]).to_list() == [2, 0, 2, 1]


def test_no_rows_gives_no_codes() -> None:
    empty = pl.DataFrame(schema={"item_id": pl.String, "site": pl.String})
    codes = group_codes(empty, ["item_id", "site"])
    assert codes.len() == 0
    assert codes.dtype == pl.get_index_type()


_TEXT = st.one_of(st.none(), st.sampled_from(["", "A", "B", "a", "AB", "Ä", "I0001"]))


@given(st.lists(st.tuples(_TEXT, _TEXT), max_size=40))
def test_codes_equal_the_rank_of_each_key_among_the_sorted_distinct_keys(
    rows: list[tuple[str | None, str | None]],
) -> None:
    frame = pl.DataFrame(rows, schema={"item_id": pl.String, "site": pl.String}, orient="row")

    def order(value: str | None) -> tuple[int, str]:
        return (0, "") if value is None else (1, value)

    distinct = sorted(set(rows), key=lambda r: (order(r[0]), order(r[1])))
    rank = {key: i for i, key in enumerate(distinct)}
    assert group_codes(frame, ["item_id", "site"]).to_list() == [rank[r] for r in rows]
