"""``segsync score``: an export file scored by the columnar core, checked against the object path."""

from __future__ import annotations

import datetime as dt
import sys
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from segsync.cli import main
from segsync.core.desired import compute as oracle
from segsync.core.models import Contact, Purchase
from segsync.core.record_checks import read_amount
from segsync.plugins.manager import build_registry, make_plugin_manager
from segsync.project.config import ProjectConfig
from segsync.project.packs import load_packs

ROOT = Path(__file__).resolve().parents[1]
AS_OF = dt.date(2025, 8, 1)
BAD_ROWS = [
    ("", "2025-01-02", "10.00", "USD"),  # no contact
    ("00000001", "02/01/2025", "10.00", "USD"),  # not ISO
    ("00000001", "2025-01-02", "1,234.50", "USD"),  # not a number
    ("00000002", "2025-01-02", "12.00", "EUR"),  # another currency
    ("00000003", "2025-09-01", "12.00", "USD"),  # after as_of
    ("00000003", "2025-03-04T23:30:00-05:00", "7.5", "usd"),  # a datetime: its own date counts
    ("00000004", "2025-03-04", "1e3", ""),  # exponent form, no currency
]


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from datagen import write
    finally:
        sys.path.pop(0)
    folder = tmp_path_factory.mktemp("export")
    files = write(3000, folder, seed=5)
    frame = pl.read_csv(files["csv"], infer_schema=False).with_columns(currency=pl.lit("USD"))
    bad = pl.DataFrame(BAD_ROWS, schema=["contact_id", "purchased_at", "amount", "currency"], orient="row")
    path = folder / "export.csv"
    pl.concat([frame, bad]).write_csv(path)
    return path


def expected(path: Path) -> dict[str, dict[str, object]]:
    """The object path (the oracle) on the same rows, read the way a platform maps a CRM."""
    rows = pl.read_csv(path, infer_schema=False).to_dicts()
    contacts = {
        r["contact_id"]: Contact(id=r["contact_id"], email="x@example.com") for r in rows if r["contact_id"]
    }
    purchases = []
    for n, r in enumerate(rows):
        amount = read_amount(r["amount"])
        try:
            closed = dt.datetime.fromisoformat(r["purchased_at"])
        except ValueError:
            continue
        if not r["contact_id"] or not isinstance(amount, Decimal):
            continue
        purchases.append(
            Purchase(
                id=str(n),
                contact_id=r["contact_id"],
                amount=amount,
                currency=r["currency"] or None,
                closed_at=closed,
            )
        )
    registry = build_registry(make_plugin_manager(load_entrypoints=False))
    config = ProjectConfig(path=path.parent / "segsync.toml")
    packs = load_packs(config, registry)
    desired = oracle(
        list(contacts.values()), purchases, config=config, packs=packs, registry=registry, as_of=AS_OF
    )
    return desired.values


@pytest.fixture(autouse=True)
def no_project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no segsync.toml here: the defaults


def score(tmp_path, capsys, source: Path, out: Path, *extra) -> tuple[int, str]:
    code = main(["score", str(source), "--out", str(out), "--as-of", AS_OF.isoformat(), *map(str, extra)])
    return code, capsys.readouterr().out


def test_every_contact_matches_the_object_path(tmp_path, capsys, export):
    code, out = score(tmp_path, capsys, export, tmp_path / "result.csv")
    assert code == 0, out
    got = {r["contact_id"]: r for r in pl.read_csv(tmp_path / "result.csv", infer_schema=False).to_dicts()}
    want = expected(export)
    assert got.keys() == want.keys()
    for cid, row in want.items():
        mine = got[cid]
        assert mine["rfm"] == row["segsync_rfm_segment"], cid
        assert mine["rfm_score"] == row["segsync_rfm_score"], cid
        assert (mine["r_score"], mine["f_score"], mine["m_score"]) == tuple(
            str(row[k]) for k in ("segsync_rfm_r_score", "segsync_rfm_f_score", "segsync_rfm_m_score")
        )
        assert mine["orders"] == str(row["segsync_order_count"])
        assert mine["revenue"] == str(row["segsync_revenue"])
        assert mine["average_order"] == str(row["segsync_average_order"])
        assert mine["last_purchase"] == row["segsync_last_purchase"].isoformat()
        assert mine["recency_days"] == str(row["segsync_recency_days"])


def test_bad_rows_are_reported_with_file_and_line(tmp_path, capsys, export):
    code, out = score(tmp_path, capsys, export, tmp_path / "result.csv")
    assert code == 0
    first = 3000 + 2  # the header is line 1
    assert f"export.csv:{first}: missing contact_id" in out
    assert f"export.csv:{first + 1}: purchased_at '02/01/2025' is not a date" in out
    assert f"export.csv:{first + 2}: amount '1,234.50' is not a number" in out
    assert f"export.csv:{first + 3}: amount is in EUR, not the home currency USD" in out
    assert f"export.csv:{first + 4}: closed on 2025-09-01, after the reference date 2025-08-01" in out
    assert "5 row(s) skipped" in out  # the datetime and the exponent form are fine


def test_parquet_in_and_out_give_the_same_result(tmp_path, capsys, export):
    pl.read_csv(export, infer_schema=False).write_parquet(tmp_path / "export.parquet")
    assert score(tmp_path, capsys, export, tmp_path / "a.csv")[0] == 0
    assert score(tmp_path, capsys, tmp_path / "export.parquet", tmp_path / "b.parquet")[0] == 0
    a = pl.read_csv(tmp_path / "a.csv", infer_schema=False)
    b = pl.read_parquet(tmp_path / "b.parquet").cast(pl.String)
    assert a.equals(b)


def test_typed_parquet_columns(tmp_path, capsys):
    frame = pl.DataFrame(
        {
            "contact_id": ["a", "b", "a"],
            "purchased_at": [
                dt.datetime(2025, 7, 1, 23, tzinfo=dt.UTC),
                dt.datetime(2025, 1, 1),
                dt.datetime(2025, 7, 2),
            ],
            "amount": [10.5, 20.0, 3.25],
        }
    )
    frame.write_parquet(tmp_path / "typed.parquet")
    code, out = score(tmp_path, capsys, tmp_path / "typed.parquet", tmp_path / "r.csv")
    assert code == 0, out
    rows = {r["contact_id"]: r for r in pl.read_csv(tmp_path / "r.csv", infer_schema=False).to_dicts()}
    assert rows["a"]["orders"] == "2"
    assert rows["a"]["revenue"] == "13.75"
    assert rows["a"]["last_purchase"] == "2025-07-02"
    assert rows["b"]["first_purchase"] == "2025-01-01"


GEO_PACK = """
[pack]
name = "geo"

[[sets]]
key = "geo"
label = "Geo"
mode = "exclusive"
field = "segsync_geo"
allow_gaps = true

[[sets.segments]]
key = "fr"
name = "France"
when = { field = "country", op = "eq", value = "FR" }
"""


def test_contacts_file_brings_prospects_properties_and_orphans(tmp_path, capsys):
    (tmp_path / "p.csv").write_text(
        "contact_id,purchased_at,amount\n7,2025-07-01,10\n007,2025-07-02,20\n9,2025-07-03,5\n"
    )
    (tmp_path / "c.csv").write_text("contact_id,country\n7,FR\n007,DE\n8,FR\n7,XX\n")
    (tmp_path / "geo.toml").write_text(GEO_PACK)
    (tmp_path / "segsync.toml").write_text('[segments]\npacks = ["rfm-standard", "./geo.toml"]\n')
    code, out = score(
        tmp_path, capsys, tmp_path / "p.csv", tmp_path / "r.csv", "--contacts", tmp_path / "c.csv"
    )
    assert code == 0, out
    rows = {r["contact_id"]: r for r in pl.read_csv(tmp_path / "r.csv", infer_schema=False).to_dicts()}
    assert set(rows) == {"7", "007", "8"}  # "7" and "007" are different ids; 8 bought nothing
    assert rows["8"]["rfm"] == "no_purchase"
    assert rows["8"]["orders"] is None
    assert (rows["7"]["geo"], rows["007"]["geo"], rows["8"]["geo"]) == (
        "fr",
        None,
        "fr",
    )  # the first copy's FR
    assert "p.csv:4: contact '9' is not in c.csv" in out
    assert "c.csv:5: duplicate contact id '7'" in out


def test_ids_of_mixed_widths_stay_apart_without_a_contacts_file(tmp_path, capsys):
    (tmp_path / "p.csv").write_text(
        "contact_id,purchased_at,amount\n7,2025-07-01,10\n007,2025-07-02,20\n7,2025-07-03,5\n"
    )
    assert score(tmp_path, capsys, tmp_path / "p.csv", tmp_path / "r.csv")[0] == 0
    rows = {r["contact_id"]: r for r in pl.read_csv(tmp_path / "r.csv", infer_schema=False).to_dicts()}
    assert rows["7"]["orders"] == "2"
    assert rows["007"]["orders"] == "1"


def test_a_missing_column_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "p.csv").write_text("contact,purchased_at,amount\n7,2025-07-01,10\n")
    code = main(["score", str(tmp_path / "p.csv"), "--out", str(tmp_path / "r.csv")])
    err = capsys.readouterr().err
    assert code == 2
    assert "missing column(s) contact_id (found: contact, purchased_at, amount)" in err
    assert "Traceback" not in err


def test_the_project_settings_apply(tmp_path, capsys, export):
    (tmp_path / "segsync.toml").write_text('[rfm]\nbins = 3\n[segments]\npacks = ["lifecycle"]\n')
    code, out = score(tmp_path, capsys, export, tmp_path / "r.csv")
    assert code == 0, out
    frame = pl.read_csv(tmp_path / "r.csv", infer_schema=False)
    assert "lifecycle" in frame.columns
    assert "rfm" not in frame.columns
    assert set(frame["r_score"].drop_nulls().to_list()) == {"1", "2", "3"}
    assert any(";" in v for v in frame["lifecycle"].drop_nulls().to_list())  # several lists at once
