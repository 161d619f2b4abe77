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
# # The same data under every valuation method
#
# `invclose.compare` closes one set of transactions under several methods in a single kernel
# pass (nothing is posted) and returns, per item and method, the quantity issued, the cost of
# goods, and the ending quantity and value. It is the controller's what-if: how much would cost
# of goods move if we valued this item by LIFO instead of FIFO? What is our LIFO reserve?

# %%
import os
from pathlib import Path

if not Path("sample_data").is_dir():  # Jupyter starts in notebooks/: work from the repo root
    os.chdir("..")

import polars as pl

import invclose
from invclose import plots
from invclose.notebook import lifo_reserve

# %% [markdown]
# ## The sample ledger, January 2025
#
# Every method is applied to every item (marked pairs still settle first).

# %%
tx = invclose.read_transactions("sample_data/transactions.parquet", dimensions=["site"])
comparison = invclose.compare(tx, "2025-01-31", dimensions=["site"])
comparison

# %% [markdown]
# Cost of goods per item and method (positive: what the issues cost after the close):

# %%
comparison.pivot(on="method", index="item_id", values="cost_of_goods")

# %% [markdown]
# Ending inventory value per item and method:

# %%
comparison.pivot(on="method", index="item_id", values="ending_value")

# %% [markdown]
# What is received is either issued or still on hand, so `cost_of_goods + ending_value` is the
# same under every method, to the cent: the methods only move cost between the two.

# %%
conservation = (
    comparison.group_by("method")
    .agg((pl.col("cost_of_goods") + pl.col("ending_value")).sum().alias("in_total"))
    .sort("method")
)
assert conservation["in_total"].n_unique() == 1
conservation

# %% [markdown]
# ## LIFO reserve
#
# The LIFO reserve is the difference between the FIFO and the LIFO value of the ending
# inventory. With rising prices it is positive: LIFO charges the newer, dearer receipts to cost
# of goods and leaves the older, cheaper ones on hand. Hand check (sample_data/README.md):
# PAINT FIFO keeps 7 of P-202 at 9.50 = 66.50, LIFO 7 of P-201 at 8.00 = 56.00, reserve 10.50;
# GLUE 37.50 - 30.00 = 7.50; BOLT -5.00 - (-6.00) = 1.00.

# %%
reserve = lifo_reserve(comparison)
reserve

# %%
total_reserve = reserve.filter(pl.col("item_id") == "total")["lifo_reserve"].item()
print(f"LIFO reserve: {total_reserve}")  # 19.00

# %%
plots.methods_chart(comparison, "cost_of_goods")

# %% [markdown]
# ## A whole year
#
# The generated year of `sample_data/year/` (transfers, two-level production, late invoices),
# closed at year end under each method in one pass.

# %%
year = pl.read_parquet("sample_data/year/transactions.parquet")
year_comparison = invclose.compare(year, "2025-12-31", dimensions=["site"])
by_method = (
    year_comparison.group_by("method")
    .agg(pl.col("cost_of_goods").sum(), pl.col("ending_value").sum())
    .sort("method")
)
by_method

# %%
lifo_reserve(year_comparison)

# %%
plots.methods_chart(year_comparison, "ending_value")
