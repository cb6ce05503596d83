"""The recap files read back: CSV with the csv module, XLSX with openpyxl."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest

from controlroom.attendance.export import (
    leave_codes,
    period_label,
    write_csv,
    write_csv_lines,
    write_xlsx,
)
from controlroom.attendance.recap import CutLine, EmployeeRecap, SkpdRecap

PRINTED = datetime(2026, 12, 3, 7, 30)


def _recap(nip: str, name: str, skpd: str, skpd_name: str, *, absences: dict[str, int],
           tl=(0, 0, 0, 0), psw=(0, 0, 0, 0), present: int = 20, cut_uncapped: float = 0.0,
           cut: float = 0.0, lines: tuple[CutLine, ...] = ()) -> EmployeeRecap:
    return EmployeeRecap(
        nip=nip, name=name, skpd=skpd, skpd_name=skpd_name, unit="Sekretariat",
        position="Analis", period="2026-11", rules_version="kota-contoh@2026.1",
        working_days=21, present_days=present, tl=tl, psw=psw, absences=absences,
        cut_uncapped_pct=cut_uncapped, cut_pct=cut, lines=lines,
    )


LATE = CutLine(date(2026, 11, 3), "TL2", 1.0, "Terlambat 35 menit (masuk 08:05:12, jadwal 07:30)",
               "Late 35 minutes (in 08:05:12, scheduled 07:30)")
ABSENT_LINES = tuple(
    CutLine(date(2026, 11, d), "TK", 3.0, "Tidak masuk tanpa keterangan",
            "Absent without leave") for d in range(10, 19)
)
CAP = CutLine(date(2026, 11, 30), "CAP", -2.5, "Batas potongan bulanan 25%",
              "Monthly cut cap 25%")

RECAPS = [
    # Deliberately out of order: SKPD 2.01 before 1.02, NIPs unsorted within 1.02.
    _recap("199001012015032001", "Siti Aminah", "2.01", "Dinas Perhubungan",
           absences={"CT": 2}, present=19),
    _recap("198504122010011003", "Budi Santoso", "1.02", "Dinas Kesehatan",
           absences={"TK": 9, "DL": 1}, tl=(0, 1, 0, 0), present=11, cut_uncapped=27.5,
           cut=25.0, lines=(LATE, *ABSENT_LINES, CAP)),
    _recap("19800101 200501 1 002", "Agus Salim", "1.02", "Dinas Kesehatan",
           absences={"CS": 1, "XYZ": 1, "CAP": 1}, psw=(1, 0, 0, 0), present=18,
           cut_uncapped=0.5, cut=0.5,
           lines=(CutLine(date(2026, 11, 5), "PSW1", 0.5, "Pulang cepat 10 menit",
                          "Left 10 minutes early"),)),
]
SKPDS = [
    SkpdRecap("2.01", "Dinas Perhubungan", "2026-11", 1, 21, 19, (0, 0, 0, 0), (0, 0, 0, 0),
              {"CT": 2}, 0.0, 0),
    SkpdRecap("1.02", "Dinas Kesehatan", "2026-11", 2, 42, 29, (0, 1, 0, 0), (1, 0, 0, 0),
              {"TK": 9, "DL": 1, "CS": 1, "XYZ": 1, "CAP": 1}, 12.75, 2),
]
N_LINES = sum(len(r.lines) for r in RECAPS)


def _read_csv(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline=""), delimiter=";"))


def test_leave_codes_in_filing_order() -> None:
    assert leave_codes([{"XYZ": 1, "TK": 2, "DL": 1}, {"CT": 1, "ABC": 1, "CAP": 1}]) == [
        "CT", "CAP", "DL", "ABC", "XYZ"]


def test_period_label() -> None:
    assert period_label("2026-11") == "November 2026"
    assert period_label("2026-08", "en") == "August 2026"
    assert period_label(date(2026, 8, 17)) == "Agustus 2026"
    with pytest.raises(ValueError, match="YYYY-MM"):
        period_label("2026-13")


def test_csv_layout(tmp_path: Path) -> None:
    path = tmp_path / "rekap.csv"
    write_csv(path, RECAPS)
    rows = _read_csv(path)
    assert rows[0] == [
        "No", "NIP", "Nama", "SKPD", "Unit", "Jabatan", "Hari kerja", "Hadir",
        "TL1", "TL2", "TL3", "TL4", "PSW1", "PSW2", "PSW3", "PSW4", "TK",
        "CT", "CS", "CAP", "DL", "XYZ",
        "Potongan sebelum batas (%)", "Potongan (%)", "Versi aturan",
    ]
    assert all(len(r) == len(rows[0]) for r in rows)
    body = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    # Sorted by SKPD code then NIP; NIPs are 18 digits, spaces removed.
    assert [r["NIP"] for r in body] == [
        "198001012005011002", "198504122010011003", "199001012015032001"]
    assert [r["No"] for r in body] == ["1", "2", "3"]
    budi = body[1]
    assert budi["Potongan sebelum batas (%)"] == "27,50"
    assert budi["Potongan (%)"] == "25,00"
    assert (budi["TK"], budi["DL"], budi["CT"], budi["TL2"]) == ("9", "1", "0", "1")
    assert body[0]["XYZ"] == "1" and body[0]["CAP"] == "1" and body[0]["Potongan (%)"] == "0,50"
    assert body[2]["SKPD"] == "Dinas Perhubungan" and body[2]["CT"] == "2"
    assert budi["Versi aturan"] == "kota-contoh@2026.1"


def test_csv_english_headers_to_an_open_stream() -> None:
    buf = io.StringIO(newline="")
    write_csv(buf, RECAPS, lang="en")
    text = buf.getvalue()
    assert text.startswith("\ufeffNo;NIP;Name;SKPD;Unit;Position;Working days;Present;")
    assert "Cut before cap (%);Cut (%);Rules version\r\n" in text


def test_csv_lines(tmp_path: Path) -> None:
    path = tmp_path / "rincian.csv"
    write_csv_lines(path, RECAPS)
    rows = _read_csv(path)
    assert rows[0] == ["NIP", "Nama", "Tanggal", "Kode", "Persen", "Keterangan"]
    assert len(rows) - 1 == N_LINES
    assert rows[1] == ["198001012005011002", "Agus Salim", "2026-11-05", "PSW1", "0,50",
                       "Pulang cepat 10 menit"]
    assert rows[2][3:5] == ["TL2", "1,00"]
    assert rows[-1][2:5] == ["2026-11-30", "CAP", "-2,50"]

    write_csv_lines(path, RECAPS, lang="en")
    rows = _read_csv(path)
    assert rows[0] == ["NIP", "Name", "Date", "Code", "Percent", "Explanation"]
    assert rows[-1][5] == "Monthly cut cap 25%"


def test_csv_empty(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", [])
    rows = _read_csv(tmp_path / "a.csv")
    assert rows[0][:3] == ["No", "NIP", "Nama"] and rows[0][-1] == "Versi aturan"
    assert rows[1][0] == "Tidak ada pegawai dalam rekap periode ini" and len(rows) == 2
    write_csv_lines(tmp_path / "b.csv", [], lang="en")
    rows = _read_csv(tmp_path / "b.csv")
    assert rows == [["NIP", "Name", "Date", "Code", "Percent", "Explanation"],
                    ["No employees in the recap for this period", "", "", "", "", ""]]


def test_unknown_lang_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lang"):
        write_csv(tmp_path / "x.csv", RECAPS, lang="fr")  # type: ignore[arg-type]


def _write_book(path: Path, recaps=RECAPS, skpds=SKPDS, **kw) -> None:
    write_xlsx(path, recaps, skpds, region_name="PEMERINTAH KOTA CONTOH", period="2026-11",
               printed_at=PRINTED, signer_name="Dra. Rina Wati, M.Si.",
               signer_nip="197001012000032001", place="Contoh", **kw)


def _rows(ws) -> list[tuple]:
    return [tuple(c.value for c in row) for row in ws.iter_rows()]


def test_xlsx_recap_sheet(tmp_path: Path) -> None:
    path = tmp_path / "rekap.xlsx"
    _write_book(path)
    book = openpyxl.load_workbook(path, data_only=True)  # cached values of the SUM formulas
    assert book.sheetnames == ["Rekap", "Rincian", "Per SKPD"]
    ws = book["Rekap"]
    assert ws["A1"].value == "REKAPITULASI KEHADIRAN PEGAWAI"
    assert ws["A2"].value == "PEMERINTAH KOTA CONTOH"
    assert ws["A3"].value == "Periode: November 2026"
    assert ws["A4"].value == "Dicetak: 3 Desember 2026 07.30"
    header = [c.value for c in ws[6]]
    assert header[:3] == ["No", "NIP", "Nama"] and header[-1] == "Versi aturan"
    assert ws.freeze_panes == "D7"
    assert ws.print_title_rows == "$6:$6"
    assert ws.page_setup.orientation == "landscape" and ws.page_setup.paperSize == 9
    # Fit to one page wide (1 is the default, which the file leaves out), any number tall.
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert ws.page_setup.fitToWidth in (None, 1) and ws.page_setup.fitToHeight == 0
    assert "&P" in ws.oddFooter.right.text
    assert ws.column_dimensions["C"].width > 20

    col = {name: i for i, name in enumerate(header)}
    rows = _rows(ws)[6:]
    assert rows[0][0] == "1.02 — Dinas Kesehatan"
    agus, budi = rows[1], rows[2]
    for person, nip in ((agus, "198001012005011002"), (budi, "198504122010011003")):
        assert isinstance(person[col["NIP"]], str) and person[col["NIP"]] == nip
    assert ws.cell(8, col["NIP"] + 1).data_type == "s"
    assert budi[col["Hadir"]] == 11 and isinstance(budi[col["Hadir"]], int)
    assert budi[col["Potongan (%)"]] == pytest.approx(0.25)
    assert budi[col["Potongan sebelum batas (%)"]] == pytest.approx(0.275)
    assert ws.cell(9, col["Potongan (%)"] + 1).number_format == "0.00%"

    # Subtotal of 1.02 equals the sums of its two rows, column by column.
    subtotal = rows[3]
    assert subtotal[0].startswith("Jumlah Dinas Kesehatan (2 pegawai)")
    for name in ("Hari kerja", "Hadir", "TL2", "PSW1", "TK", "CS", "DL", "XYZ"):
        assert subtotal[col[name]] == agus[col[name]] + budi[col[name]], name
    assert subtotal[col["Hadir"]] == 29 and subtotal[col["TK"]] == 9
    assert rows[4][0] == "2.01 — Dinas Perhubungan"
    assert rows[5][col["NIP"]] == "199001012015032001"
    assert rows[6][0].startswith("Jumlah Dinas Perhubungan") and rows[6][col["CT"]] == 2
    grand = rows[7]
    assert grand[0].startswith("Jumlah seluruh SKPD (3 pegawai)")
    assert grand[col["Hadir"]] == 19 + 11 + 18 and grand[col["Hari kerja"]] == 63

    # The subtotals are formulas, so an edited cell still adds up in Excel.
    formulas = openpyxl.load_workbook(path)["Rekap"]
    assert formulas.cell(10, col["Hadir"] + 1).value == "=SUM(H8:H9)"

    # Signature block at the end: place and date, title, blank lines, name, NIP.
    texts = [next((v for v in r if isinstance(v, str)), None) for r in rows[8:]]
    texts = [t for t in texts if t is not None]
    assert texts == ["Contoh, 3 Desember 2026", "Kepala BKPSDM", "Dra. Rina Wati, M.Si.",
                     "NIP 19700101 200003 2 001"]


def test_xlsx_detail_and_skpd_sheets(tmp_path: Path) -> None:
    path = tmp_path / "rekap.xlsx"
    _write_book(path, paper="F4")
    book = openpyxl.load_workbook(path)
    assert book["Rekap"].page_setup.paperSize == 14
    lines = _rows(book["Rincian"])
    assert lines[0] == ("NIP", "Nama", "Tanggal", "Kode", "Persen", "Keterangan")
    assert len(lines) - 1 == N_LINES
    assert lines[1][0] == "198001012005011002" and lines[1][2] == datetime(2026, 11, 5)
    assert lines[1][4] == pytest.approx(0.005)
    assert [r[3] for r in lines[2:]] == ["TL2"] + ["TK"] * 9 + ["CAP"]
    assert lines[-1][4] == pytest.approx(-0.025)

    per_skpd = _rows(book["Per SKPD"])
    header = per_skpd[0]
    assert header[:4] == ("Kode SKPD", "SKPD", "Periode", "Pegawai")
    col = {name: i for i, name in enumerate(header)}
    assert [r[0] for r in per_skpd[1:]] == ["1.02", "2.01"]
    kes = per_skpd[1]
    assert kes[col["Pegawai"]] == 2 and kes[col["TK"]] == 9 and kes[col["XYZ"]] == 1
    assert kes[col["Rata-rata potongan (%)"]] == pytest.approx(0.1275)
    assert kes[col["Pegawai terpotong"]] == 2


def test_xlsx_english(tmp_path: Path) -> None:
    path = tmp_path / "recap.xlsx"
    _write_book(path, lang="en", signer_title="Head of BKPSDM")
    book = openpyxl.load_workbook(path, data_only=True)
    assert book.sheetnames == ["Recap", "Details", "By SKPD"]
    ws = book["Recap"]
    assert ws["A1"].value == "EMPLOYEE ATTENDANCE RECAP"
    assert ws["A3"].value == "Period: November 2026"
    assert ws["A4"].value == "Printed: 3 December 2026 07:30"
    assert [c.value for c in ws[6]][:4] == ["No", "NIP", "Name", "SKPD"]
    assert "Page &P of &N" in ws.oddFooter.right.text
    values = [v for row in _rows(ws) for v in row if isinstance(v, str)]
    assert "Total Dinas Kesehatan (2 employees)" in values
    assert "Contoh, 3 December 2026" in values and "Head of BKPSDM" in values
    assert _rows(book["Details"])[0] == ("NIP", "Name", "Date", "Code", "Percent",
                                         "Explanation")
    assert _rows(book["Details"])[-1][5] == "Monthly cut cap 25%"
    assert _rows(book["By SKPD"])[0][:2] == ("SKPD code", "SKPD")


def test_xlsx_empty(tmp_path: Path) -> None:
    path = tmp_path / "kosong.xlsx"
    write_xlsx(path, [], [], region_name="KOTA CONTOH", period="2026-11", printed_at=PRINTED)
    book = openpyxl.load_workbook(path)
    ws = book["Rekap"]
    assert [c.value for c in ws[6]][:3] == ["No", "NIP", "Nama"]
    assert ws["A7"].value == "Tidak ada pegawai dalam rekap periode ini"
    values = [v for row in _rows(ws) for v in row if isinstance(v, str)]
    assert "KOTA CONTOH, 3 Desember 2026" in values and "Kepala BKPSDM" in values
    assert _rows(book["Rincian"])[1][0] == "Tidak ada pegawai dalam rekap periode ini"
    assert _rows(book["Per SKPD"])[1][0] == "Tidak ada pegawai dalam rekap periode ini"


def test_xlsx_no_cut_lines(tmp_path: Path) -> None:
    path = tmp_path / "rekap.xlsx"
    write_xlsx(path, RECAPS[:1], SKPDS[:1], region_name="KOTA CONTOH", period="2026-11",
               printed_at=PRINTED)
    lines = _rows(openpyxl.load_workbook(path)["Rincian"])
    assert lines[1][0] == "Tidak ada potongan dalam periode ini" and len(lines) == 2
