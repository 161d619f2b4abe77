"""Marked pairs, settled before any method runs (close-semantics §4).

Issues marked to one receipt are served in key order; what a receipt cannot serve goes on to
the method. An issue whose receipt is not eligible is excluded from the run altogether.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class MarkingOutcome:
    """Pieces of marked pairs, quantity they used per row, and the issues excluded."""

    pieces: pl.DataFrame  # issue_pos, receipt_pos, qty, phase, rank, principle
    used: pl.DataFrame  # pos, used (micro-units consumed by marking)
    excluded: pl.DataFrame  # pos of issues whose marked receipt is not eligible


def settle_marked(working: pl.DataFrame) -> MarkingOutcome:
    """Serve every marked issue from its receipt, in key order per receipt."""
    # Narrow selects before the filters: only the columns read here are filtered.
    unknown = pl.col("mark_unknown") if "mark_unknown" in working.columns else pl.lit(False)
    issues = (
        working.select(
            "pos", "fin", "q_abs", "marked_to", "participates", "is_receipt", unknown.alias("unk")
        )
        .filter(pl.col("participates") & ~pl.col("is_receipt") & pl.col("marked_to").is_not_null())
        .select(
            pl.col("pos").alias("issue_pos"),
            pl.col("fin").alias("i_fin"),
            pl.col("q_abs").alias("i_q"),
            "marked_to",
            "unk",
        )
    )
    # Only rows some issue is marked to can match: look at those alone.
    targets = issues["marked_to"].unique().implode()
    receipts = (
        working.select("txn_id", "pos", "fin", "participates", "is_receipt", "q_abs")
        .filter(pl.col("txn_id").is_in(targets))
        .select(
            pl.col("txn_id").alias("marked_to"),
            pl.col("pos").alias("receipt_pos"),
            pl.col("fin").alias("r_fin"),
            pl.col("participates").alias("r_part"),
            pl.col("is_receipt").alias("r_is_receipt"),
            pl.col("q_abs").alias("r_q"),
        )
    )
    marked = issues.join(receipts, on="marked_to", how="left")
    found = pl.col("receipt_pos").is_not_null()
    # A receipt absent from the working set that an earlier close closed (used up) is
    # eligible but has nothing left, so the whole issue goes on to the method; one that no
    # close knows (``mark_unknown``: left out of an input cut at the closing date) is not.
    eligible = (~found & ~pl.col("unk")) | (
        pl.col("r_is_receipt") & pl.col("r_part") & (pl.col("r_fin") | ~pl.col("i_fin"))
    ).fill_null(False)
    marked = marked.with_columns(eligible=eligible, found=found)
    excluded = marked.filter(~pl.col("eligible")).select(pl.col("issue_pos").alias("pos"))
    served = (
        marked.filter(pl.col("eligible") & pl.col("found"))
        .sort(["receipt_pos", "issue_pos"])
        .with_columns(cum=pl.col("i_q").cum_sum().over("receipt_pos"))
        .with_columns(
            qty=(
                pl.min_horizontal("cum", "r_q")
                - pl.min_horizontal(pl.col("cum") - pl.col("i_q"), "r_q")
            ).clip(lower_bound=0)
        )
        .filter(pl.col("qty") > 0)
    )
    pieces = served.select(
        "issue_pos",
        "receipt_pos",
        "qty",
        phase=pl.lit(0, pl.Int64),
        rank=pl.col("issue_pos"),
        principle=pl.lit("marking"),
    )
    used = pl.concat(
        [
            served.group_by("issue_pos").agg(pl.col("qty").sum()).rename({"issue_pos": "pos"}),
            served.group_by("receipt_pos").agg(pl.col("qty").sum()).rename({"receipt_pos": "pos"}),
        ]
    ).rename({"qty": "used"})
    return MarkingOutcome(pieces=pieces, used=used, excluded=excluded)
