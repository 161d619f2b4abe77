"""CloseConfig: settings checked once, item and account tables in any supported form."""

from __future__ import annotations

import polars as pl
import pytest

import invclose
from tests.helpers import ACCOUNTS, D, day, tx


@pytest.mark.parametrize("name", ["close_id", "level", "qty", "pos", "variance"])
def test_a_dimension_named_like_a_column_of_the_close_is_refused(name: str) -> None:
    # "close_id" as a dimension was overwritten by the run's id (two groups, one label);
    # "level" and the others collided with the log's or the kernel's columns.
    with pytest.raises(invclose.ConfigError, match=rf"\['{name}'\].*rename"):
        invclose.CloseConfig(dimensions=["site", name])


def _frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    # A: R1 2 @ 10.00, R2 2 @ 14.00, I1 -2 posted 24.00. lifo by the item table: I1 takes
    # R2, 28.00: adjustment -4.00 (more cost).
    frame = tx(("R1", "A", 1, 2, "20.00"), ("R2", "A", 2, 2, "28.00"), ("I1", "A", 3, -2, "-24.00"))
    items = pl.DataFrame({"item_id": ["A"], "method": ["lifo"]})
    return frame, items


@pytest.mark.parametrize("form", ["pandas", "arrow", "lazy"])
def test_item_and_account_tables_in_any_supported_form(form: str) -> None:
    frame, items = _frames()
    convert = {
        "pandas": lambda f: f.to_pandas(),
        "arrow": lambda f: f.to_arrow(),
        "lazy": lambda f: f.lazy(),
    }[form]
    result = invclose.close(frame, day(31), items=convert(items), accounts=convert(ACCOUNTS))
    assert result.adjustments.select("txn_id", "adjustment").rows() == [("I1", D("-4.00"))]
    same = invclose.close(frame, day(31), items=items, accounts=ACCOUNTS)
    assert result.close_id == same.close_id


def test_every_column_of_the_kernels_rows_is_reserved(monkeypatch: pytest.MonkeyPatch) -> None:
    # The names a dimension cannot take must cover what the kernel adds to the rows, or a
    # dimension could silently collide with one: watch the kernel output of closes with
    # orders, averages and markings.
    import importlib

    from benchmarks import datagen
    from benchmarks.worker import accounts_catch_all

    module = importlib.import_module("invclose.close")
    seen: set[str] = set()
    draft = module.assemble_draft

    def watch(output, *args, **kwargs):  # type: ignore[no-untyped-def]
        for table in (output.rows, output.pieces, output.log, output.balances):
            seen.update(table.columns)
        return draft(output, *args, **kwargs)

    monkeypatch.setattr(module, "assemble_draft", watch)
    frame = datagen.generate(2000, "flows")
    for method in ("fifo", "lifo_date", "weighted_average", "weighted_average_date"):
        invclose.close(
            frame,
            datagen.CLOSE_DATE,
            method=method,
            dimensions=["site"],
            accounts=accounts_catch_all(),
            include_physical_value=True,
        )
    assert seen - {"site"} <= invclose.config.reserved_columns()


def test_settings_of_the_wrong_type_are_named(tmp_path: object) -> None:
    # Raw TypeError / AttributeError tracebacks before: pathlib on 42, a dict's missing
    # with_overrides, an int comparison with a string.
    from invclose.batched import close_batched

    frame, _ = _frames()
    with pytest.raises(invclose.ConfigError, match=r"opening must be a CloseResult.*not int"):
        invclose.close(frame, day(31), accounts=ACCOUNTS, opening=42)
    with pytest.raises(invclose.ConfigError, match=r"config must be an invclose\.CloseConfig"):
        invclose.close(frame, day(31), config={"method": "lifo"})  # type: ignore[arg-type]
    with pytest.raises(invclose.ConfigError, match="batch_rows must be a positive"):
        close_batched(frame, day(31), f"{tmp_path}/out", batch_rows="10")  # type: ignore[arg-type]
