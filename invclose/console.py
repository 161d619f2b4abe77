"""The consoles of the command line, shared by ``invclose`` and ``invclose ledger``.

Without console markup: transaction ids, messages and SQL values are printed as they are (a
``[/x]`` in a ``txn_id`` must neither vanish nor crash the command), and validation messages
keep their ``[check_name]`` tags.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

console = Console(markup=False)
err_console = Console(stderr=True, markup=False)


def error_line(message: str) -> Text:
    """``message`` after a bold red ``error:``, its own text never read as markup.

    >>> error_line("row 3 [txn_id_duplicate]").plain
    'error: row 3 [txn_id_duplicate]'
    """
    return Text.assemble(("error:", "bold red"), " ", message)
