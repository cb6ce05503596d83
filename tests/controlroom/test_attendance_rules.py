"""The rule file schema: the shipped default loads, and each broken rule is refused with a
RulesError that names the file and the key path a clerk has to fix."""

from __future__ import annotations

from datetime import date

import pytest

from controlroom.attendance.rules import RulesError, Span, load_rules, parse_rules

# A small valid file; each bad case below breaks exactly one thing in it.
VALID = """\
region = "uji"
name = "Aturan uji"

[[versions]]
version = "v1"
valid_from = 2026-01-01
default_group = "kantor"

[versions.late]
missing_punch = "TL2"
brackets = [
  { code = "TL1", from_min = 1, pct = 0.5 },
  { code = "TL2", from_min = 31, pct = 1.0 },
]

[versions.early]
missing_punch = "PSW2"
brackets = [
  { code = "PSW1", from_min = 1, pct = 0.5 },
  { code = "PSW2", from_min = 31, pct = 1.0 },
]

[versions.groups.kantor]
kind = "weekly"
week = { mon = "07:30-16:00", tue = "07:30-16:00", wed = "07:30-16:00", thu = "07:30-16:00", fri = "07:30-16:30" }

[[versions.holidays]]
day = 2026-08-17
name = "Hari Kemerdekaan"

[versions.leave_types]
CT = { name_id = "Cuti tahunan", name_en = "Annual leave", excuses = "day" }
"""

ROSTER_GROUP = """
[versions.groups.jaga]
kind = "roster"
holidays_off = false
"""

SECOND_VERSION = """
[[versions]]
version = "v0"
valid_from = 2025-01-01
default_group = "kantor"
late = { missing_punch = "TL1", brackets = [{ code = "TL1", from_min = 1, pct = 0.5 }] }
early = { missing_punch = "PSW1", brackets = [{ code = "PSW1", from_min = 1, pct = 0.5 }] }
groups.kantor = { week = { mon = "07:30-16:00", tue = "07:30-16:00", wed = "07:30-16:00", thu = "07:30-16:00", fri = "07:30-16:30" } }
leave_types.CT = { name_id = "Cuti tahunan", name_en = "Annual leave", excuses = "day" }
"""


def test_the_valid_base_file_loads():
    rules = parse_rules(VALID, "uji.toml")
    assert rules.region == "uji"
    assert rules.source == "uji.toml"
    assert len(rules.checksum) == 16
    assert rules.version_on(date(2026, 3, 1)).version == "v1"


def test_the_shipped_default_loads():
    rules = load_rules()
    version = rules.version_on(date(2026, 11, 2))
    assert rules.region == "default"
    assert version.default_group == "reguler"
    assert set(version.groups) == {"reguler", "enam_hari", "shift"}
    assert version.groups["shift"].kind == "roster"
    assert version.groups["shift"].holidays_off is False
    assert [b.from_min for b in version.late.brackets] == [1, 31, 61, 91]
    assert [b.pct for b in version.late.brackets] == [0.5, 1.0, 1.25, 1.5]
    assert [b.code for b in version.early.brackets] == ["PSW1", "PSW2", "PSW3", "PSW4"]
    assert version.late.missing_punch == "TL4"
    assert version.early.missing_punch == "PSW4"
    assert version.absent_cut_pct == 3.0
    assert version.grace_min == 0
    assert {"CT", "CS", "DL", "IT", "IPC"} <= set(version.leave_types)
    assert version.leave_types["IT"].excuses == "late"
    assert version.leave_types["IPC"].excuses == "early"
    holidays = {h.day for h in version.holidays}
    assert {date(2026, 8, 17), date(2026, 12, 24), date(2026, 12, 25)} <= holidays
    assert label_of(rules, date(2026, 11, 2)) == "default@2026.1"


def label_of(rules, day: date) -> str:
    return rules.label(rules.version_on(day))


# (case, text, fragments the message must hold: the key path and the reason)
BAD_FILES = [
    ("brackets not increasing",
     VALID.replace('code = "TL2", from_min = 31', 'code = "TL2", from_min = 1'),
     ["versions.0.late", "strictly increasing"]),
    ("brackets going down",
     VALID.replace('code = "PSW2", from_min = 31', 'code = "PSW2", from_min = 0'),
     ["versions.0.early.brackets.1.from_min"]),
    ("missing_punch not a bracket",
     VALID.replace('missing_punch = "TL2"', 'missing_punch = "TL9"'),
     ["versions.0.late", "missing_punch 'TL9'"]),
    ("leave type uses the reserved TK",
     VALID + 'TK = { name_id = "Tanpa keterangan", name_en = "Absent", excuses = "none" }\n',
     ["versions.0", "TK"]),
    ("leave type uses the reserved BATAS",
     VALID + 'BATAS = { name_id = "Batas", name_en = "Cap", excuses = "none" }\n',
     ["versions.0", "BATAS"]),
    ("unknown key in a version",
     VALID.replace("default_group = ", "grace_minutes = 5\ndefault_group = "),
     ["versions.0.grace_minutes", "Extra inputs are not permitted"]),
    ("unknown key at the top",
     VALID.replace('name = "Aturan uji"', 'name = "Aturan uji"\nzona = "WIB"'),
     ["zona", "Extra inputs are not permitted"]),
    ("span without a leading zero",
     VALID.replace('mon = "07:30-16:00"', 'mon = "7:30-16:00"'),
     ["versions.0.groups.kantor.week.mon", "'7:30-16:00'"]),
    ("versions not in date order",
     VALID + SECOND_VERSION,
     ["strictly increasing valid_from"]),
    ("default_group is not a group",
     VALID.replace('default_group = "kantor"', 'default_group = "reguler"'),
     ["versions.0", "default_group 'reguler'"]),
    ("default_group left out",
     VALID.replace('default_group = "kantor"\n', ""),
     ["versions.0.default_group", "Field required"]),
    ("roster group without shifts",
     VALID + ROSTER_GROUP,
     ["versions.0", "a roster group needs [shifts]"]),
    ("holiday listed twice",
     VALID.replace('[versions.leave_types]',
                   '[[versions.holidays]]\nday = 2026-08-17\nname = "Lagi"\n\n'
                   '[versions.leave_types]'),
     ["versions.0", "listed twice"]),
    ("not TOML at all",
     "region = default\n[[versions\n",
     ["uji.toml", "not valid TOML"]),
]


@pytest.mark.parametrize(("case", "text", "fragments"), BAD_FILES,
                         ids=[case for case, _, _ in BAD_FILES])
def test_a_bad_file_names_the_key_path(case, text, fragments):
    with pytest.raises(RulesError) as caught:
        parse_rules(text, "uji.toml")
    message = str(caught.value)
    assert message.startswith("uji.toml: ")
    for fragment in fragments:
        assert fragment in message, (case, message)


def test_versions_in_date_order_load():
    text = VALID.replace("[[versions]]", SECOND_VERSION.strip() + "\n\n[[versions]]", 1)
    # SECOND_VERSION has dotted keys under [[versions]]; placed first it is the older one.
    rules = parse_rules(text, "uji.toml")
    assert [v.version for v in rules.file.versions] == ["v0", "v1"]
    assert rules.version_on(date(2025, 12, 31)).version == "v0"
    assert rules.version_on(date(2026, 1, 1)).version == "v1"


def test_version_on_before_the_first_version_raises():
    rules = parse_rules(VALID, "uji.toml")
    with pytest.raises(RulesError, match=r"uji\.toml: no rule version is in force on 2025-12-31"):
        rules.version_on(date(2025, 12, 31))


def test_a_missing_file_raises_rules_error(tmp_path):
    with pytest.raises(RulesError, match="cannot read the rule file"):
        load_rules(tmp_path / "tidak_ada.toml")


@pytest.mark.parametrize(("text", "start_min", "end_min"), [
    ("07:30-16:00", 450, 960),
    ("21:00-07:00", 1260, 1860),  # overnight: ends 07:00 the next day
    ("19:00-07:00", 1140, 1860),
    ("00:00-00:00", 0, 1440),  # an end at the start is a full day
    ("07:00-14:00", 420, 840),
])
def test_span_minutes(text, start_min, end_min):
    assert Span.parse(text) == Span(start_min, end_min)


@pytest.mark.parametrize("text", ["7:30-16:00", "07:30-24:00", "07:60-16:00", "07:30 16:00", ""])
def test_span_refuses_bad_text(text):
    with pytest.raises(ValueError, match="is not a span"):
        Span.parse(text)
