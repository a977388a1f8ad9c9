"""The workbooks offices file or publish (complaint statistics, the gift register): one sheet in one
house style — Sarabun, wrapped cells, header and section fills, thin boxes, A4 fitted to the width."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from string import ascii_uppercase

# What a spreadsheet reads as the start of a formula: text that begins so, typed by people (a gift item,
# a source name), is written as text, never run (=HYPERLINK(…) in a report an admin opens).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def inert(row: Iterable) -> list:
    """A CSV row whose text cells cannot start a formula (OWASP: a leading apostrophe)."""
    return [f"'{v}" if isinstance(v, str) and v.startswith(FORMULA_START) else v for v in row]


class Sheet:
    def __init__(self, sheet_title: str, doc_title: str) -> None:
        from openpyxl import Workbook
        from openpyxl.styles import Alignment, Border, Font, PatternFill, Side

        self.wb = Workbook()
        self.ws = self.wb.active
        self.ws.title = sheet_title
        self.wb.properties.creator = "itabot"
        self.wb.properties.lastModifiedBy = "itabot"
        self.wb.properties.title = doc_title
        self.font = Font(name="Sarabun", size=12)
        self.bold = Font(name="Sarabun", size=12, bold=True)
        self.title = Font(name="Sarabun", size=16, bold=True)
        self.subtle = Font(name="Sarabun", size=11, italic=True, color="555555")
        self.head_fill = PatternFill("solid", fgColor="DDE7F0")
        self.section_fill = PatternFill("solid", fgColor="F2F2F2")
        thin = Side(style="thin", color="999999")
        self.box = Border(left=thin, right=thin, top=thin, bottom=thin)
        self.wrap = Alignment(wrap_text=True, vertical="top")

    def put(self, row: int, col: int, value, f=None, fill=None, fmt: str | None = None, border: bool = False):
        cell = self.ws.cell(row=row, column=col, value=value)
        if isinstance(value, str) and value.startswith("="):  # openpyxl would store it as a formula
            cell.data_type = "s"
        cell.font = f or self.font
        cell.alignment = self.wrap
        if fill is not None:
            cell.fill = fill
        if fmt:
            cell.number_format = fmt
        if border:
            cell.border = self.box
        return cell

    def line(self, row: int, value, f=None, fill=None, *, last_col: int, first_col: int = 1) -> None:
        """A value across columns ``first_col``..``last_col`` (a title, a note, a section heading)."""
        self.put(row, first_col, value, f, fill)
        self.ws.merge_cells(start_row=row, start_column=first_col, end_row=row, end_column=last_col)

    def finish(self, widths: Sequence[int], *, landscape: bool, title_rows: str, freeze: str | None = None) -> bytes:
        ws = self.ws
        for col, width in zip(ascii_uppercase, widths, strict=False):
            ws.column_dimensions[col].width = width
        ws.page_setup.paperSize = ws.PAPERSIZE_A4
        ws.page_setup.orientation = "landscape" if landscape else "portrait"
        ws.page_setup.fitToWidth = 1
        ws.page_setup.fitToHeight = 0
        ws.sheet_properties.pageSetUpPr.fitToPage = True
        ws.print_title_rows = title_rows
        if freeze:
            ws.freeze_panes = freeze
        out = io.BytesIO()
        self.wb.save(out)
        return out.getvalue()
