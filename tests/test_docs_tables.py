"""``astro-exp docs-tables``: a doc's marked table is rendered from the JSON a command wrote,
``check=true`` finds the tables that drifted from it, a missing JSON is skipped with a line,
a bad marker is one error line; and every marker in the docs parses. No network, no outputs/."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from astro_exp.cli.docs_tables import main
from astro_exp.errors import ConfigError, DataError
from astro_exp.tables import find_doc_tables, parse_table_spec, render_json_table
from tests.conftest import ROOT

STUDY = {
    "rows": [
        {"name": "weak", "n_train": 7014, "acc": 0.8263, "ece_raw": 0.0806, "gold": False},
        {"name": "ceiling", "n_train": 774, "acc": 0.8051, "gold": True},  # no ece_raw
    ]
}
MARKER = """<!-- table: out/study.json rows=rows floats=.3f
     "columns=name={name}{gold:? [gold]}, n_train, acc, ece_raw" -->"""
FRESH = """| name | n_train | acc | ece_raw |
|---|---|---|---|
| weak | 7014 | 0.826 | 0.081 |
| ceiling [gold] | 774 | 0.805 |  |"""
STALE = FRESH.replace("0.826", "0.830")


def write_doc(tmp_path: Path, table: str, marker: str = MARKER) -> Path:
    doc = tmp_path / "doc.md"
    doc.write_text(f"# Study\n\nProse.\n\n{marker}\n\n{table}\n\n<!-- /table -->\n\nMore prose.\n")
    return doc


def write_json(tmp_path: Path, data: object = STUDY) -> None:
    (tmp_path / "out").mkdir(exist_ok=True)
    (tmp_path / "out" / "study.json").write_text(json.dumps(data))


def test_rewrites_a_stale_table_and_check_finds_drift(tmp_path, capsys) -> None:
    write_json(tmp_path)
    doc = write_doc(tmp_path, STALE)
    before = doc.read_bytes()

    assert main([str(doc), f"root={tmp_path}", "check=true"]) == 1
    out = capsys.readouterr().out
    assert "doc.md:5: differs from out/study.json" in out
    assert doc.read_bytes() == before  # check writes nothing

    assert main([str(doc), f"root={tmp_path}"]) == 0
    assert "doc.md:5: rewritten from out/study.json" in capsys.readouterr().out
    assert doc.read_text() == before.decode().replace(STALE, FRESH)  # only the table changed

    assert main([str(doc), f"root={tmp_path}", "check=true"]) == 0
    assert "tables: 1 up to date" in capsys.readouterr().out


def test_missing_json_is_skipped_with_a_line(tmp_path, capsys) -> None:
    doc = write_doc(tmp_path, STALE)
    before = doc.read_bytes()
    assert main([str(doc), f"root={tmp_path}", "check=true"]) == 0
    assert main([str(doc), f"root={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "doc.md:5: skipped, out/study.json not found (the table stays as written)" in out
    assert doc.read_bytes() == before


@pytest.mark.parametrize(
    "marker, message",
    [
        ("<!-- table: out/study.json rows=rows colums=name -->", "'colums=name'"),
        ("<!-- table: out/study.json rows=rows -->", "no columns="),
        ('<!-- table: out/study.json "columns=a={x" -->', "column 'a={x'"),
        ('<!-- table: out/study.json "columns=a -->', "No closing quotation"),
        ("<!-- table: out/study.json columns=a floats=.3q -->", "floats='.3q'"),
    ],
)
def test_a_bad_marker_is_one_error_line(tmp_path, capsys, marker, message) -> None:
    write_json(tmp_path)
    doc = write_doc(tmp_path, STALE, marker)
    before = doc.read_bytes()
    with pytest.raises(SystemExit) as exit_:
        main([str(doc), f"root={tmp_path}"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: doc.md:5: table marker") and message in err
    assert err.count("\n") == 1
    assert doc.read_bytes() == before


def test_json_without_the_rows_or_a_column_is_an_error(tmp_path, capsys) -> None:
    write_json(tmp_path, {"rows": [{"name": "weak"}]})
    doc = write_doc(tmp_path, STALE)
    with pytest.raises(SystemExit):
        main([str(doc), f"root={tmp_path}"])
    assert "error: doc.md:5: no row of rows in out/study.json has 'acc'" in capsys.readouterr().err


def test_marker_without_its_end_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"d.md:3: table marker without its <!-- /table -->"):
        find_doc_tables("x\n\n<!-- table: a.json columns=a -->\n| a |\n", "d.md")
    with pytest.raises(ConfigError, match="without its <!-- table"):
        find_doc_tables("<!-- /table -->\n", "d.md")


def test_spec_covers_pivoted_dicts_labels_keys_and_nan() -> None:
    curves = {"corrections": {"curves": {
        "uncertainty": [{"corrections": 0, "f1": 0.79, "sd": 0.011}, {"corrections": 50, "f1": 0.8, "sd": 0.02}],
        "random": [{"corrections": 0, "f1": 0.79, "sd": 0.011}, {"corrections": 50, "f1": math.nan, "sd": 0.01}],
    }}}  # fmt: skip
    spec = parse_table_spec(
        'x.json rows=corrections.curves keys=random,uncertainty label.random="random (3 shuffles)" '
        '"columns=order={@key}, {0.corrections}={0.f1:.3f} ±{0.sd:.3f}, '
        '{1.corrections} corrections={1.f1:.3f}"'
    )
    assert render_json_table(spec, curves).splitlines() == [
        "| order | 0 | 50 corrections |",
        "|---|---|---|",
        "| random (3 shuffles) | 0.790 ±0.011 | - |",
        "| uncertainty | 0.790 ±0.011 | 0.800 |",
    ]
    fused = {"fused": {"em": {"pooled": {"acc": 0.876}}, "n": 967}}
    spec = parse_table_spec('x.json rows=fused keys=em floats=.2f "columns=by={@key}, pooled.acc"')
    assert render_json_table(spec, fused).splitlines()[-1] == "| em | 0.88 |"
    with pytest.raises(DataError, match="has no 'picture' \\(keys=\\)"):
        render_json_table(parse_table_spec("x.json rows=fused keys=picture columns=n"), fused)


def test_every_marker_in_the_docs_parses() -> None:
    """The docs' markers are valid specs; their JSON (outputs/, not in git) is not needed."""
    docs = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
    tables = [t for doc in docs for t in find_doc_tables(doc.read_text(encoding="utf-8"), doc.name)]
    assert tables, "docs/*.md has no marked table"
    for t in tables:
        assert not Path(t.spec.source).is_absolute() and t.spec.source.endswith(".json")
