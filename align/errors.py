"""User-facing errors: one line `path:line: what is wrong; how to fix it`, exit code 2, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input (file, recipe, data) that they can fix.

    `str(err)` is the one line printed on stderr: `path:line: what is wrong; how to fix it`.
    """

    def __init__(self, what: str, fix: str = "", path: str | None = None, line: int | None = None) -> None:
        self.what, self.fix, self.path, self.line = what, fix, path, line
        super().__init__(self.format())

    def format(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}:{self.line}: " if self.line is not None else f"{self.path}: "
        return f"{where}{self.what}" + (f"; {self.fix}" if self.fix else "")
