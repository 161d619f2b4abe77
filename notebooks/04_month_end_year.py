# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A year of month-end closes
#
# `sample_data/year/` is one year of a fictional outdoor-equipment company (made by
# `sample_data/generate_year.py`): purchases at HQ, a two-level production (tubes and bolts
# into frames, frames, fabric and bolts into tents), transfers to two shops, daily sales, late
# vendor invoices and a few returns to the vendor marked to their receipt.
#
# We close it the way a controller does: at each month end, with what was posted by then,
# each close continuing from the previous one (`opening=`).

# %%
import os
from pathlib import Path

if not Path("sample_data").is_dir():  # Jupyter starts in notebooks/: work from the repo root
    os.chdir("..")

import polars as pl

import invclose
from invclose import plots
from invclose.notebook import close_months, cogs_by_period, known_at, month_ends
from invclose.views import register_views

# %%
year = pl.read_parquet("sample_data/year/transactions.parquet")
items = pl.read_csv("sample_data/year/items.csv")
accounts = pl.read_csv("sample_data/year/accounts.csv", infer_schema=False)
settings = {"dimensions": ["site"], "items": items, "accounts": accounts}
items

# %%
year.group_by("kind", "status").agg(
    pl.len().alias("rows"), pl.col("amount").sum().alias("amount")
).sort("kind", "status")

# %% [markdown]
# ## Close month by month
#
# `close_months` gives each close the rows dated on or before its closing date
# (`known_at`): a delivery received in the last days of a month is still `physical` at that
# month's close; its invoice, dated in the next month, replaces it in the next close.

# %%
results = close_months(year, month_ends(2025), **settings)
overview = pl.DataFrame(
    {
        "closing_date": [r.closing_date for r in results],
        "settled_pieces": [r.settlements.height for r in results],
        "adjusted_rows": [r.adjustments.height for r in results],
        "cost_delta": [r.adjustments["cost_delta"].sum() for r in results],
        "findings": [r.log.height for r in results],
        "inventory_value": [r.balances["value"].sum() for r in results],
    }
)
overview

# %% [markdown]
# ## Cost of goods sold per month
#
# What the sales were posted at (the running average at the time) plus what each close
# adjusted on them: the balance of the cost-of-goods accounts for the month. A sale shipped
# before the month end and invoiced after it is the month's cost of goods, as the ledger
# posts it (the invoice takes the shipment's amount back and posts its own).

# %%
cogs = cogs_by_period(year, results)
cogs

# %%
total_cogs = cogs["cogs"].sum()
print(f"cost of goods sold 2025: {total_cogs}")

# %%
plots.cogs_chart(cogs)

# %% [markdown]
# ## A late invoice
#
# A close holds the deliveries received but not yet invoiced as open `physical` rows; the
# next month each is replaced by its invoice (same `txn_id`, `financial`, the invoiced amount).
# The first month end with such deliveries:


# %%
def uninvoiced(result: invclose.CloseResult) -> pl.DataFrame:
    return result.open_items.filter((pl.col("status") == "physical") & (pl.col("qty") > 0))


month = next(r for r in results if uninvoiced(r).height)
late = uninvoiced(month).select("txn_id", "item_id", "date", "qty", "amount")
print(f"received, not invoiced at {month.closing_date}: {late.height}")
late

# %%
year.filter(pl.col("txn_id").is_in(late["txn_id"].implode())).select(
    "txn_id", "status", "date", "qty", "amount"
).sort("txn_id", "date")

# %% [markdown]
# ## What July could not settle, August did
#
# July's close logged a bulk chair order shipped from a delivery not yet invoiced. The August
# close, with the invoice in, settles those issues and adjusts them.

# %%
july, august = results[6], results[7]
july.log.select("code", "item_id", "site", "txn_id", "qty")

# %%
august.adjustments.filter(pl.col("txn_id").is_in(july.log["txn_id"].implode())).select(
    "txn_id", "date", "qty", "posted_amount", "settled_amount", "cost_delta", "adjustment_date"
)

# %% [markdown]
# ## Returns to the vendor
#
# A return is an issue marked (`marked_to`) to the receipt it sends back: whatever the item's
# method, it settles against that receipt first (principle `marking`).

# %%
pl.concat([r.settlements.filter(pl.col("principle") == "marking") for r in results]).select(
    "settlement_date", "issue_txn_id", "receipt_txn_id", "item_id", "qty", "amount"
)

# %% [markdown]
# ## The year end reconciles
#
# Rebuilt from the whole year's transactions and the adjustments of all twelve closes, the
# inventory value on 31 December equals December's balances, group by group, to the cent.

# %%
december = results[-1]
con = register_views(None, december, transactions=year, earlier=results[:-1])
rebuilt = con.sql("select item_id, site, qty, value from inventory_value('2025-12-31')").pl()
check = rebuilt.join(
    december.balances.select("item_id", "site", "qty", "value"),
    on=["item_id", "site"],
    how="full",
    suffix="_balances",
    coalesce=True,
)
mismatches = check.filter(
    (pl.col("value") != pl.col("value_balances")) | (pl.col("qty") != pl.col("qty_balances"))
)
print(f"groups: {check.height}, mismatches: {mismatches.height}")
print(f"inventory value 2025-12-31: {rebuilt['value'].sum()}")

# %%
con.sql("select * from reconciliation").pl()

# %%
plots.onhand_over_time(year, december, "TENT", earlier=results[:-1])

# %% [markdown]
# ## Persisting the chain
#
# Each close can be written to a directory and the next one continued from it: the same
# inputs give the same close (same `close_id`).

# %%
import tempfile

with tempfile.TemporaryDirectory() as tmp:
    results[0].write(Path(tmp) / "2025-01")
    feb = invclose.close(
        known_at(year, "2025-02-28"), "2025-02-28", opening=Path(tmp) / "2025-01", **settings
    )
print(f"same close as the chain: {feb.close_id == results[1].close_id}")
