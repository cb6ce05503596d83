"""The monthly attendance recap laid out for filing: CSV for machines, XLSX for BKPSDM.

Owns the files' layout: columns, labels (Bahasa Indonesia, or English), number formats, sort
order, the printed page. It must not compute the recap (recap.py does), read the database, or
validate NIPs (a PPPK's NI is no PNS NIP; the recap is filed as it stands).

File format choices:

* CSV is semicolon-separated UTF-8 with a BOM and decimal commas. Excel set to Indonesian
  uses the comma as decimal separator and the semicolon as list separator, so it opens such a
  file by double-click with its columns split, accents intact and "3,50" read as a number.
* CSV holds the NIP as its 18 plain digits, without any prefix, so that programs reading the
  file get the NIP itself. Excel opening the CSV may still turn it into a number and round it
  to 15 significant digits: the CSV is for machines, and the XLSX, where the NIP is a text
  cell, is the filing format.
* XLSX percentages are stored as fractions (0.035) with a "0.00%" format, so the cell shows
  3.50% and multiplying a TPP amount by it gives the cut.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Literal

import xlsxwriter
from xlsxwriter.utility import xl_rowcol_to_cell

from controlroom.attendance.recap import ABSENT, CutLine, EmployeeRecap, SkpdRecap

Lang = Literal["id", "en"]

# Leave and duty codes in the order BKPSDM files them: the leave types of PP 11/2017 (CT cuti
# tahunan, CS sakit, CM melahirkan, CAP alasan penting, CB bersama, CBS besar, CLTN di luar
# tanggungan negara), then DL dinas luar, TB tugas belajar, IT izin tertulis, IPC izin pulang
# cepat. Codes not listed follow alphabetically. (The monthly cap's cut line is "BATAS" in
# recap.py and appears only in the Rincian lines.)
LEAVE_CODE_ORDER: tuple[str, ...] = (
    "CT", "CS", "CM", "CAP", "CB", "CBS", "CLTN", "DL", "TB", "IT", "IPC",
)

MONTHS: dict[str, tuple[str, ...]] = {
    "id": ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus",
           "September", "Oktober", "November", "Desember"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
}

# Every word the files show, one table per language (same keys in both).
LABELS: dict[str, dict[str, str]] = {
    "id": {
        "no": "No",
        "nip": "NIP",
        "name": "Nama",
        "skpd": "SKPD",
        "skpd_code": "Kode SKPD",
        "unit": "Unit",
        "position": "Jabatan",
        "period": "Periode",
        "working_days": "Hari kerja",
        "present_days": "Hadir",
        "cut_uncapped_pct": "Potongan sebelum batas (%)",
        "cut_pct": "Potongan (%)",
        "rules_version": "Versi aturan",
        "date": "Tanggal",
        "code": "Kode",
        "pct": "Persen",
        "explanation": "Keterangan",
        "employees": "Pegawai",
        "cut_pct_mean": "Rata-rata potongan (%)",
        "employees_with_cut": "Pegawai terpotong",
        "no_employees": "Tidak ada pegawai dalam rekap periode ini",
        "no_lines": "Tidak ada potongan dalam periode ini",
        "sheet_recap": "Rekap",
        "sheet_lines": "Rincian",
        "sheet_skpd": "Per SKPD",
        "title": "REKAPITULASI KEHADIRAN PEGAWAI",
        "period_line": "Periode: {period}",
        "printed_line": "Dicetak: {printed}",
        "subtotal": "Jumlah {skpd} ({n} pegawai)",
        "grand_total": "Jumlah seluruh SKPD ({n} pegawai)",
        "footer_page": "Halaman &P dari &N",
        "signer_nip": "NIP {nip}",
        "time_sep": ".",  # EYD writes clock time as 07.30
    },
    "en": {
        "no": "No",
        "nip": "NIP",
        "name": "Name",
        "skpd": "SKPD",
        "skpd_code": "SKPD code",
        "unit": "Unit",
        "position": "Position",
        "period": "Period",
        "working_days": "Working days",
        "present_days": "Present",
        "cut_uncapped_pct": "Cut before cap (%)",
        "cut_pct": "Cut (%)",
        "rules_version": "Rules version",
        "date": "Date",
        "code": "Code",
        "pct": "Percent",
        "explanation": "Explanation",
        "employees": "Employees",
        "cut_pct_mean": "Mean cut (%)",
        "employees_with_cut": "Employees with a cut",
        "no_employees": "No employees in the recap for this period",
        "no_lines": "No cuts in this period",
        "sheet_recap": "Recap",
        "sheet_lines": "Details",
        "sheet_skpd": "By SKPD",
        "title": "EMPLOYEE ATTENDANCE RECAP",
        "period_line": "Period: {period}",
        "printed_line": "Printed: {printed}",
        "subtotal": "Total {skpd} ({n} employees)",
        "grand_total": "Total of all SKPDs ({n} employees)",
        "footer_page": "Page &P of &N",
        "signer_nip": "NIP {nip}",
        "time_sep": ":",
    },
}

# Excel's paper indices: 9 is A4, 14 is Folio 8.5 x 13 in (216 x 330 mm), what Indonesian
# offices call F4.
PAPER_INDEX: dict[str, int] = {"A4": 9, "F4": 14}

CSV_DELIMITER = ";"
_BOM = "\ufeff"

Kind = Literal["index", "nip", "text", "count", "pct"]


@dataclass(frozen=True, slots=True)
class _Column:
    label: str
    kind: Kind
    width: float  # XLSX column width in characters
    value: Callable[[EmployeeRecap], object]


def _labels(lang: str) -> dict[str, str]:
    try:
        return LABELS[lang]
    except KeyError:
        raise ValueError(f"lang must be one of {sorted(LABELS)}, got {lang!r}") from None


def _plain_nip(nip: str) -> str:
    return nip.replace(" ", "")


def _sorted(recaps: Iterable[EmployeeRecap]) -> list[EmployeeRecap]:
    return sorted(recaps, key=lambda r: (r.skpd, _plain_nip(r.nip)))


def leave_codes(absences: Iterable[dict[str, int]]) -> list[str]:
    """The leave/duty codes present in any of `absences` (TK has its own column), in filing
    order."""
    present = {code for a in absences for code in a if code != ABSENT}
    known = [code for code in LEAVE_CODE_ORDER if code in present]
    return known + sorted(present - set(LEAVE_CODE_ORDER))


def _columns(lang: str, codes: Sequence[str]) -> list[_Column]:
    lab = _labels(lang)
    cols = [
        _Column(lab["no"], "index", 5, lambda r: None),  # filled with the row number
        _Column(lab["nip"], "nip", 20, lambda r: _plain_nip(r.nip)),
        _Column(lab["name"], "text", 28, lambda r: r.name),
        _Column(lab["skpd"], "text", 24, lambda r: r.skpd_name),
        _Column(lab["unit"], "text", 20, lambda r: r.unit),
        _Column(lab["position"], "text", 22, lambda r: r.position),
        _Column(lab["working_days"], "count", 8, lambda r: r.working_days),
        _Column(lab["present_days"], "count", 7, lambda r: r.present_days),
    ]
    cols += [_Column(f"TL{i + 1}", "count", 5, lambda r, i=i: r.tl[i]) for i in range(4)]
    cols += [_Column(f"PSW{i + 1}", "count", 6, lambda r, i=i: r.psw[i]) for i in range(4)]
    cols.append(_Column(ABSENT, "count", 5, lambda r: r.absences.get(ABSENT, 0)))
    cols += [_Column(code, "count", 6, lambda r, c=code: r.absences.get(c, 0)) for code in codes]
    cols += [
        _Column(lab["cut_uncapped_pct"], "pct", 12, lambda r: r.cut_uncapped_pct),
        _Column(lab["cut_pct"], "pct", 10, lambda r: r.cut_pct),
        _Column(lab["rules_version"], "text", 18, lambda r: r.rules_version),
    ]
    return cols


# ---------------------------------------------------------------------------------------- CSV


def _decimal_comma(pct: float) -> str:
    return f"{pct:.2f}".replace(".", ",")


def _write_rows(path_or_file: str | os.PathLike[str] | IO[str],
                rows: Iterable[Sequence[object]]) -> None:
    """Write a BOM, then `rows` as `;`-separated CSV, to a path or an open text stream (open it
    with encoding="utf-8" and newline="", as the csv module asks)."""
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "w", encoding="utf-8", newline="") as f:
            _write_rows(f, rows)
        return
    path_or_file.write(_BOM)
    writer = csv.writer(path_or_file, delimiter=CSV_DELIMITER, lineterminator="\r\n")
    writer.writerows(rows)


def write_csv(path_or_file: str | os.PathLike[str] | IO[str],
              recaps: Sequence[EmployeeRecap], *, lang: Lang = "id") -> None:
    """One row per employee, sorted by SKPD code then NIP (layout in the module docstring).

    The SKPD column holds the SKPD's name; leave/duty columns are those present in any recap.
    An empty `recaps` gives the header and one row saying there are no employees.
    """
    lab = _labels(lang)
    cols = _columns(lang, leave_codes(r.absences for r in recaps))

    def rows() -> Iterable[list[object]]:
        yield [c.label for c in cols]
        if not recaps:
            yield [lab["no_employees"]] + [""] * (len(cols) - 1)
        for n, recap in enumerate(_sorted(recaps), start=1):
            row: list[object] = []
            for c in cols:
                if c.kind == "index":
                    row.append(n)
                elif c.kind == "pct":
                    row.append(_decimal_comma(c.value(recap)))  # type: ignore[arg-type]
                else:
                    row.append(c.value(recap))
            yield row

    _write_rows(path_or_file, rows())


def _line_rows(recaps: Sequence[EmployeeRecap]) -> Iterable[tuple[EmployeeRecap, CutLine]]:
    # Within an employee the lines keep the recap's order (by day, the cap's line last).
    for recap in _sorted(recaps):
        for line in recap.lines:
            yield recap, line


def write_csv_lines(path_or_file: str | os.PathLike[str] | IO[str],
                    recaps: Sequence[EmployeeRecap], *, lang: Lang = "id") -> None:
    """Every line behind a cut: NIP, name, date (ISO, which Excel and programs both read),
    code, percent (decimal comma), explanation in `lang`."""
    lab = _labels(lang)
    header = [lab[k] for k in ("nip", "name", "date", "code", "pct", "explanation")]

    def rows() -> Iterable[list[object]]:
        yield header
        lines = list(_line_rows(recaps))
        if not recaps:
            yield [lab["no_employees"]] + [""] * (len(header) - 1)
        elif not lines:
            yield [lab["no_lines"]] + [""] * (len(header) - 1)
        for recap, line in lines:
            yield [_plain_nip(recap.nip), recap.name, line.day.isoformat(), line.code,
                   _decimal_comma(line.pct), line.text_id if lang == "id" else line.text_en]

    _write_rows(path_or_file, rows())


# --------------------------------------------------------------------------------------- XLSX


def period_label(period: str | date, lang: Lang = "id") -> str:
    """"2026-11" (or a date in it) -> "November 2026"."""
    _labels(lang)
    if isinstance(period, date):
        year, month = period.year, period.month
    else:
        try:
            year_s, month_s = period.split("-")
            year, month = int(year_s), int(month_s)
        except ValueError:
            raise ValueError(f"period must be 'YYYY-MM', got {period!r}") from None
        if not 1 <= month <= 12:
            raise ValueError(f"period must be 'YYYY-MM', got {period!r}")
    return f"{MONTHS[lang][month - 1]} {year}"


def _long_date(day: date, lang: Lang) -> str:
    return f"{day.day} {MONTHS[lang][day.month - 1]} {day.year}"


def _printed(at: datetime, lang: Lang) -> str:
    sep = LABELS[lang]["time_sep"]
    return f"{_long_date(at.date(), lang)} {at.hour:02d}{sep}{at.minute:02d}"


def _written_nip(nip: str) -> str:
    # Grouped as NIPs are written under a signature; anything else is shown as given.
    digits = _plain_nip(nip)
    if len(digits) == 18 and digits.isascii() and digits.isdigit():
        return f"{digits[0:8]} {digits[8:14]} {digits[14]} {digits[15:18]}"
    return nip


def write_xlsx(path: str | os.PathLike[str], recaps: Sequence[EmployeeRecap],
               skpd_recaps: Sequence[SkpdRecap], *, region_name: str, period: str | date,
               printed_at: datetime, lang: Lang = "id", signer_title: str = "Kepala BKPSDM",
               signer_name: str = "", signer_nip: str = "", place: str | None = None,
               paper: Literal["A4", "F4"] = "A4") -> None:
    """The recap workbook BKPSDM files: sheets Rekap, Rincian and Per SKPD (English names with
    lang="en").

    Rekap is grouped by SKPD, each group with a heading and a subtotal row (SUM formulas with
    their values cached, so readers that do not compute see them), then a grand total and the
    signature block: `place` (default `region_name`) and the date of `printed_at`,
    `signer_title`, room to sign, `signer_name`, "NIP ...". It prints landscape on `paper`,
    fitted to the page width, header rows repeated, pages numbered in the footer.
    """
    lab = _labels(lang)
    if paper not in PAPER_INDEX:
        raise ValueError(f"paper must be one of {sorted(PAPER_INDEX)}, got {paper!r}")
    codes = leave_codes([r.absences for r in recaps] + [s.absences for s in skpd_recaps])
    workbook = xlsxwriter.Workbook(os.fspath(path), {"strings_to_numbers": False})
    try:
        fmt = _Formats(workbook)
        _write_recap_sheet(workbook, fmt, lab, lang, recaps, codes, region_name=region_name,
                           period=period_label(period, lang), printed_at=printed_at,
                           signer_title=signer_title, signer_name=signer_name,
                           signer_nip=signer_nip, place=place or region_name,
                           paper=PAPER_INDEX[paper])
        _write_lines_sheet(workbook, fmt, lab, lang, recaps)
        _write_skpd_sheet(workbook, fmt, lab, skpd_recaps, codes)
    finally:
        workbook.close()


class _Formats:
    """The workbook's cell formats, made once (XlsxWriter keeps every format it is given)."""

    def __init__(self, wb: xlsxwriter.Workbook) -> None:
        border = {"border": 1, "valign": "top"}
        self.title = wb.add_format({"bold": True, "font_size": 14, "align": "center"})
        self.subtitle = wb.add_format({"bold": True, "align": "center"})
        self.note = wb.add_format({"italic": True, "align": "center"})
        self.header = wb.add_format({"bold": True, "text_wrap": True, "align": "center",
                                     "valign": "vcenter", "bg_color": "#D9E1F2", "border": 1})
        self.text = wb.add_format({**border, "text_wrap": True})
        self.nip = wb.add_format({**border, "num_format": "@"})  # text: Excel keeps 18 digits
        self.count = wb.add_format({**border, "num_format": "0"})
        self.pct = wb.add_format({**border, "num_format": "0.00%"})
        self.date = wb.add_format({**border, "num_format": "dd/mm/yyyy"})
        self.group = wb.add_format({"bold": True, "bg_color": "#F2F2F2", "border": 1})
        self.total_text = wb.add_format({"bold": True, "border": 1, "bg_color": "#F2F2F2"})
        self.total_count = wb.add_format({"bold": True, "border": 1, "bg_color": "#F2F2F2",
                                          "num_format": "0"})
        self.sign = wb.add_format({"align": "center"})
        self.sign_name = wb.add_format({"align": "center", "bold": True, "underline": True})


def _write_cell(ws, row: int, col: int, kind: Kind, value: object, fmt: _Formats) -> None:
    if kind == "nip" or kind == "text":
        ws.write_string(row, col, str(value), fmt.nip if kind == "nip" else fmt.text)
    elif kind == "pct":
        ws.write_number(row, col, float(value) / 100, fmt.pct)  # type: ignore[arg-type]
    else:
        ws.write_number(row, col, value, fmt.count)  # type: ignore[arg-type]


def _write_recap_sheet(wb: xlsxwriter.Workbook, fmt: _Formats, lab: dict[str, str], lang: Lang,
                       recaps: Sequence[EmployeeRecap], codes: Sequence[str], *,
                       region_name: str, period: str, printed_at: datetime, signer_title: str,
                       signer_name: str, signer_nip: str, place: str, paper: int) -> None:
    ws = wb.add_worksheet(lab["sheet_recap"])
    cols = _columns(lang, codes)
    last_col = len(cols) - 1
    ws.merge_range(0, 0, 0, last_col, lab["title"], fmt.title)
    ws.merge_range(1, 0, 1, last_col, region_name, fmt.subtitle)
    ws.merge_range(2, 0, 2, last_col, lab["period_line"].format(period=period), fmt.subtitle)
    ws.merge_range(3, 0, 3, last_col,
                   lab["printed_line"].format(printed=_printed(printed_at, lang)), fmt.note)
    header_row = 5
    for c, col in enumerate(cols):
        ws.write_string(header_row, c, col.label, fmt.header)
        ws.set_column(c, c, col.width)
    ws.set_row(header_row, 30)
    ws.freeze_panes(header_row + 1, 3)  # the header and No, NIP, Nama stay in view

    row = header_row + 1
    summed = [c for c, col in enumerate(cols) if col.kind == "count"]
    subtotal_rows: list[int] = []
    if not recaps:
        ws.merge_range(row, 0, row, last_col, lab["no_employees"], fmt.text)
        row += 1
    n = 0
    ordered = _sorted(recaps)
    groups: dict[str, list[EmployeeRecap]] = {}
    for recap in ordered:
        groups.setdefault(recap.skpd, []).append(recap)
    for skpd, members in groups.items():
        ws.merge_range(row, 0, row, last_col, f"{skpd} — {members[0].skpd_name}", fmt.group)
        row += 1
        first = row
        for recap in members:
            n += 1
            for c, col in enumerate(cols):
                value = n if col.kind == "index" else col.value(recap)
                _write_cell(ws, row, c, "count" if col.kind == "index" else col.kind,
                            value, fmt)
            row += 1
        label = lab["subtotal"].format(skpd=members[0].skpd_name, n=len(members))
        ws.merge_range(row, 0, row, summed[0] - 1, label, fmt.total_text)
        for c in summed:
            total = sum(int(cols[c].value(r)) for r in members)  # type: ignore[call-overload]
            top, bottom = xl_rowcol_to_cell(first, c), xl_rowcol_to_cell(row - 1, c)
            ws.write_formula(row, c, f"=SUM({top}:{bottom})", fmt.total_count, total)
        for c in range(summed[-1] + 1, last_col + 1):
            ws.write_blank(row, c, None, fmt.total_text)
        subtotal_rows.append(row)
        row += 1
    if subtotal_rows:
        label = lab["grand_total"].format(n=len(ordered))
        ws.merge_range(row, 0, row, summed[0] - 1, label, fmt.total_text)
        for c in summed:
            total = sum(int(cols[c].value(r)) for r in ordered)  # type: ignore[call-overload]
            cells = ",".join(xl_rowcol_to_cell(r, c) for r in subtotal_rows)
            ws.write_formula(row, c, f"=SUM({cells})", fmt.total_count, total)
        for c in range(summed[-1] + 1, last_col + 1):
            ws.write_blank(row, c, None, fmt.total_text)
        row += 1

    # Signature block on the right, as letters and recaps are signed.
    sign_first = max(last_col - 4, 0)
    row += 2
    block = [
        (f"{place}, {_long_date(printed_at.date(), lang)}", fmt.sign),
        (signer_title, fmt.sign),
        ("", fmt.sign), ("", fmt.sign), ("", fmt.sign),
        (signer_name or "(" + "." * 30 + ")", fmt.sign_name if signer_name else fmt.sign),
        (lab["signer_nip"].format(nip=_written_nip(signer_nip)) if signer_nip
         else lab["signer_nip"].format(nip="." * 24), fmt.sign),
    ]
    for text, cell_fmt in block:
        if sign_first == last_col:
            ws.write_string(row, last_col, text, cell_fmt)
        else:
            ws.merge_range(row, sign_first, row, last_col, text, cell_fmt)
        row += 1

    ws.set_landscape()
    ws.set_paper(paper)
    ws.fit_to_pages(1, 0)  # one page wide, as many tall as it takes
    ws.repeat_rows(header_row)
    ws.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.6)
    ws.set_footer(f"&L{lab['title']} — {period}&R{lab['footer_page']}")
    ws.print_area(0, 0, row - 1, last_col)


def _write_lines_sheet(wb: xlsxwriter.Workbook, fmt: _Formats, lab: dict[str, str], lang: Lang,
                       recaps: Sequence[EmployeeRecap]) -> None:
    ws = wb.add_worksheet(lab["sheet_lines"])
    header = [lab[k] for k in ("nip", "name", "date", "code", "pct", "explanation")]
    for c, (text, width) in enumerate(zip(header, (20, 28, 11, 7, 9, 60), strict=True)):
        ws.write_string(0, c, text, fmt.header)
        ws.set_column(c, c, width)
    ws.freeze_panes(1, 0)
    lines = list(_line_rows(recaps))
    if not lines:
        ws.write_string(1, 0, lab["no_employees"] if not recaps else lab["no_lines"], fmt.text)
        return
    for row, (recap, line) in enumerate(lines, start=1):
        ws.write_string(row, 0, _plain_nip(recap.nip), fmt.nip)
        ws.write_string(row, 1, recap.name, fmt.text)
        ws.write_datetime(row, 2, datetime(line.day.year, line.day.month, line.day.day),
                          fmt.date)
        ws.write_string(row, 3, line.code, fmt.text)
        ws.write_number(row, 4, line.pct / 100, fmt.pct)
        ws.write_string(row, 5, line.text_id if lang == "id" else line.text_en, fmt.text)
    ws.autofilter(0, 0, len(lines), len(header) - 1)
    ws.set_landscape()
    ws.fit_to_pages(1, 0)
    ws.repeat_rows(0)
    ws.set_footer(f"&R{lab['footer_page']}")


def _write_skpd_sheet(wb: xlsxwriter.Workbook, fmt: _Formats, lab: dict[str, str],
                      skpd_recaps: Sequence[SkpdRecap], codes: Sequence[str]) -> None:
    ws = wb.add_worksheet(lab["sheet_skpd"])
    cols: list[tuple[str, Kind, float, Callable[[SkpdRecap], object]]] = [
        (lab["skpd_code"], "text", 10, lambda s: s.skpd),
        (lab["skpd"], "text", 30, lambda s: s.skpd_name),
        (lab["period"], "text", 9, lambda s: s.period),
        (lab["employees"], "count", 9, lambda s: s.employees),
        (lab["working_days"], "count", 8, lambda s: s.working_days),
        (lab["present_days"], "count", 7, lambda s: s.present_days),
    ]
    cols += [(f"TL{i + 1}", "count", 5, lambda s, i=i: s.tl[i]) for i in range(4)]
    cols += [(f"PSW{i + 1}", "count", 6, lambda s, i=i: s.psw[i]) for i in range(4)]
    cols.append((ABSENT, "count", 5, lambda s: s.absences.get(ABSENT, 0)))
    cols += [(code, "count", 6, lambda s, c=code: s.absences.get(c, 0)) for code in codes]
    cols += [
        (lab["cut_pct_mean"], "pct", 12, lambda s: s.cut_pct_mean),
        (lab["employees_with_cut"], "count", 10, lambda s: s.employees_with_cut),
    ]
    for c, (label, _, width, _) in enumerate(cols):
        ws.write_string(0, c, label, fmt.header)
        ws.set_column(c, c, width)
    ws.set_row(0, 30)
    ws.freeze_panes(1, 2)
    if not skpd_recaps:
        ws.write_string(1, 0, lab["no_employees"], fmt.text)
    for row, skpd in enumerate(sorted(skpd_recaps, key=lambda s: s.skpd), start=1):
        for c, (_, kind, _, value) in enumerate(cols):
            _write_cell(ws, row, c, kind, value(skpd), fmt)
    ws.set_landscape()
    ws.fit_to_pages(1, 0)
    ws.repeat_rows(0)
    ws.set_footer(f"&R{lab['footer_page']}")


__all__ = [
    "CSV_DELIMITER",
    "LABELS",
    "LEAVE_CODE_ORDER",
    "MONTHS",
    "PAPER_INDEX",
    "leave_codes",
    "period_label",
    "write_csv",
    "write_csv_lines",
    "write_xlsx",
]
