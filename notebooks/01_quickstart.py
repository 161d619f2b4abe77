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
# # invclose quick start
#
# Close the bundled sample ledger (one company, January 2025, three items at two sites; the
# close is worked out by hand in `sample_data/README.md`), look at what the close produced and
# query it with SQL.
#
# The notebooks are [jupytext](https://jupytext.readthedocs.io) percent scripts (they diff
# like code and hold no outputs): `pip install -e ".[notebook]"`, start `jupyter lab` in the
# repository root and open this file as a notebook, or run it as a plain script.

# %%
import os
from pathlib import Path

if not Path("sample_data").is_dir():  # Jupyter starts in notebooks/: work from the repo root
    os.chdir("..")

import polars as pl

import invclose
from invclose import plots
from invclose.views import register_views

# %% [markdown]
# ## Load
#
# `read_transactions` validates everything at once and gives exact decimals: quantities with 6
# places, money with 2. `site` is the financial dimension: the close settles within a site.

# %%
tx = invclose.read_transactions("sample_data/transactions.parquet", dimensions=["site"])
items = pl.read_csv("sample_data/items.csv")  # valuation method and item group per item
accounts = pl.read_csv("sample_data/accounts.csv", infer_schema=False)  # kind -> accounts
tx.select("txn_id", "item_id", "site", "date", "qty", "amount", "status", "kind", "marked_to")

# %% [markdown]
# ## Close January

# %%
result = invclose.close(tx, "2025-01-31", dimensions=["site"], items=items, accounts=accounts)
print(result.summary())

# %% [markdown]
# In Jupyter the result also shows itself as a compact HTML table:

# %%
result

# %% [markdown]
# ## The tables
#
# `settlements`: which receipt each issue was costed from. BOLT is FIFO, except S-003, which
# is marked to P-001.

# %%
result.settlements.select(
    "issue_txn_id", "receipt_txn_id", "item_id", "site", "qty", "amount", "principle"
)

# %% [markdown]
# `adjustments`: posted cost against settled cost, per adjusted transaction. `cost_delta` is
# positive when the close adds cost of goods.

# %%
result.adjustments.select(
    "txn_id",
    "item_id",
    "posted_amount",
    "settled_amount",
    "adjustment",
    "cost_delta",
    "inventory_account",
    "offset_account",
)

# %%
total = result.adjustments["cost_delta"].sum()
print(f"total cost delta: {total}")  # 11.50, as in sample_data/README.md

# %% [markdown]
# `vouchers` post those adjustments to the ledger (every voucher balances), `log` says what
# could not be settled, and `balances` is what is left on hand.

# %%
result.vouchers.select("voucher_id", "line_no", "account", "debit", "credit", "txn_id")

# %%
result.log.select("level", "code", "item_id", "site", "txn_id", "qty", "message")

# %%
result.balances.select("item_id", "site", "method", "qty", "value", "unit_cost")

# %% [markdown]
# ## SQL
#
# `result.sql(...)` runs a query over every table (and the auditor views `gl_by_account`,
# `reconciliation`, `unsettled`) on a private in-memory DuckDB.

# %%
result.sql("select account, debit, credit, balance from gl_by_account")

# %% [markdown]
# `register_views` puts the same views on a connection of your own, plus the transactions and
# two table macros: `inventory_value(as_of)` (value per item and site on any date) and
# `lineage(txn_id)` (where a row's cost came from).

# %%
con = register_views(None, result, transactions=tx)
con.sql(
    "select item_id, site, qty, value, settled_value "
    "from inventory_value('2025-01-15') order by item_id, site"
).pl()

# %%
con.sql("select txn_id, depth from lineage('S-001')").pl()

# %% [markdown]
# ## Charts
#
# `invclose.plots` draws Altair charts over a result (money is converted to float for display
# only).

# %%
plots.adjustments_by_item(result)

# %%
plots.onhand_over_time(tx, result, "BOLT")

# %% [markdown]
# ## Save and continue
#
# `result.write(dir)` writes one Parquet file per table and a manifest; a later close
# continues from it with `opening=dir`.

# %%
import tempfile

with tempfile.TemporaryDirectory() as tmp:
    result.write(Path(tmp) / "jan")
    feb = invclose.close(
        tx,
        "2025-02-28",
        dimensions=["site"],
        items=items,
        accounts=accounts,
        opening=Path(tmp) / "jan",
    )
# February's one sale, S-004, takes the 5 units of P-002 that January left on hand.
feb.settlements.select("issue_txn_id", "receipt_txn_id", "qty", "amount", "principle")
