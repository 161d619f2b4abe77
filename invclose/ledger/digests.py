"""Row digests of the ledger: SHA-256 of rows' canonical texts, and sorted sets of them.

Used by :mod:`~invclose.ledger.store` (a run's output hash is accumulated while its rows are
inserted) and :mod:`~invclose.ledger.audit` (the same hashes recomputed from the file). The
hashes are :func:`invclose.hashing.row_hashes`, computed in the process, never by a query on
the ledger file's connection: such a query inside a write transaction keeps its intermediate
memory until the transaction ends (about 600 MB per million closed rows, measured).
"""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl

from invclose.hashing import row_hashes

__all__ = [
    "BATCH",
    "SortedHashes",
    "add_by_run",
    "joined_digest",
    "sha256_text",
]

#: Rows read, hashed or written as hex at a time when whole tables are digested.
BATCH = 262_144
_DIGEST_BYTES = 32
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_HEX_DIGEST = r"^[0-9a-f]{64}$"


def sha256_text(text: str) -> str:
    """Lowercase hex SHA-256 of ``text`` (UTF-8).

    >>> sha256_text("")[:16]
    'e3b0c44298fc1c14'
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class SortedHashes:
    """A multiset of hex row hashes whose :meth:`digest` is the SHA-256 of their sorted join.

    ``digest(prefix)`` equals ``sha256_text(prefix + "\n".join(sorted(hashes)))`` over every
    hash added, without that list or that string: lowercase 64-digit hex SHA-256 digests
    (every row hash of the ledger) are kept as 32 bytes each, sorted with numpy (their byte
    order is the order of their hex text) and written back as hex in slices. Anything else
    (a damaged file) is kept as text and joined as before.
    """

    def __init__(self) -> None:
        self._packed: list[np.ndarray] = []
        self._text: list[pl.Series] = []

    def add(self, hashes: pl.Series) -> None:
        """Add a String Series of row hashes."""
        if hashes.len() == 0:
            return
        if hashes.null_count() == 0 and bool(hashes.str.contains(_HEX_DIGEST).all()):
            raw = bytes.fromhex(str(hashes.str.join("").item()))
            self._packed.append(np.frombuffer(raw, dtype=np.uint8).reshape(-1, _DIGEST_BYTES))
        else:
            self._text.append(hashes)

    def digest(self, prefix: str = "") -> str:
        """``sha256_text(prefix + "\n".join(sorted(hashes)))``."""
        if self._text:  # not all hex digests: the plain way, on text
            texts = [bytes(row).hex() for block in self._packed for row in block]
            texts += [h for series in self._text for h in series.to_list()]
            return sha256_text(prefix + "\n".join(sorted(texts)))
        out = hashlib.sha256(prefix.encode("utf-8"))
        if not self._packed:
            return out.hexdigest()
        packed = self._packed[0] if len(self._packed) == 1 else np.concatenate(self._packed)
        words = packed.view(">u8")  # four big-endian words per digest: byte order
        order = np.argsort(words[:, 0], kind="stable")
        first = words[order, 0]
        if first.shape[0] > 1 and bool((first[1:] == first[:-1]).any()):
            order = np.lexsort((words[:, 3], words[:, 2], words[:, 1], words[:, 0]))
        n = packed.shape[0]
        for start in range(0, n, BATCH):
            block = packed[order[start : start + BATCH]]
            text = np.empty((block.shape[0], 2 * _DIGEST_BYTES + 1), dtype=np.uint8)
            text[:, 0:-1:2] = _HEX[block >> 4]
            text[:, 1:-1:2] = _HEX[block & 15]
            text[:, -1] = ord("\n")
            flat = text.reshape(-1)
            # No newline after the last digest.
            out.update((flat[:-1] if start + BATCH >= n else flat).tobytes())
        return out.hexdigest()


def add_by_run(digests: dict[int, SortedHashes], frame: pl.DataFrame) -> None:
    """Add the row hash of every row of ``frame`` (all its columns) to its ``run_id``'s digest.

    Rows are hashed :data:`BATCH` at a time; ``digests`` gains a :class:`SortedHashes` for
    each run it had not seen.

    >>> acc: dict[int, SortedHashes] = {}
    >>> add_by_run(acc, pl.DataFrame({"run_id": [2, 1, 2], "x": ["a", "b", "c"]}))
    >>> sorted(acc)
    [1, 2]
    """
    for start in range(0, frame.height, BATCH):
        part = frame.slice(start, BATCH)
        keyed = pl.DataFrame({"run_id": part["run_id"], "h": row_hashes(part, part.columns)})
        for (run_id,), group in keyed.group_by("run_id"):
            digests.setdefault(int(str(run_id)), SortedHashes()).add(group["h"])


def joined_digest(hashes: pl.Series, prefix: str = "") -> str:
    r"""``sha256_text(prefix + "\n".join(sorted(hashes)))`` without a Python list of hashes.

    >>> h = [sha256_text(t) for t in ("b", "a")]
    >>> joined_digest(pl.Series(h)) == sha256_text("\n".join(sorted(h)))
    True
    """
    acc = SortedHashes()
    acc.add(hashes)
    return acc.digest(prefix)
