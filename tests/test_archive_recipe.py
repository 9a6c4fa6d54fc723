"""The archive source's label levers (``source.targets``) and the archive study's probe.

Why: ten times the pictures with the rules' labels as they are scored worse than the
thumbnails alone (issue #22, docs/archive.md); the study's best label lever is a source
option, and these tests pin what each option does to the targets on a tiny folder the test
writes (no shared data, no model).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from astro_exp.crossval.archive_probe import fit_probe
from astro_exp.data.labels import Labeller, load_label_config
from astro_exp.errors import ConfigError, DataError
from astro_exp.sources.archive import ApodArchiveSource, label_margin

# (title, explanation): sure texts, one unsure (galaxy and star nearly tied), one naming nothing
TEXTS = [
    ("Spiral Galaxy NGC 1", "A grand design spiral galaxy with arms of young blue stars."),
    ("The Orion Nebula", "Glowing hydrogen gas of an emission nebula."),
    ("Jupiter and Io", "The giant planet Jupiter and its volcanic moon."),
    ("Star Cluster M2", "A rich open star cluster of bright young stars."),
    ("Galaxy and Cluster", "A star cluster in front of a galaxy."),
    ("Spiral Galaxy NGC 6", "A spiral galaxy seen face on."),
]


@pytest.fixture(scope="module")
def apod4() -> dict:
    return load_label_config("apod4")


def _jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _archive(root: Path) -> list[str]:
    rows = []
    for i, (title, text) in enumerate(TEXTS):
        rel = f"images/2020/2020-01-{i + 1:02d}.jpg"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(_jpeg(i))
        rows.append(
            {"file": rel, "date": f"2020-01-{i + 1:02d}", "title": title, "explanation": text}
        )
    (root / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return [r["file"] for r in rows]


def test_label_margin_is_the_lead_over_the_runner_up() -> None:
    assert label_margin({"galaxy": 9.0, "star": 2.0}, "galaxy", "other", 2.0) == 7.0
    assert label_margin({}, "other", "other", 2.0) == 2.0  # names nothing: one weak hit
    assert label_margin({"star": 1.5}, "other", "other", 2.0) == 0.5  # almost named a star


def test_confident_keeps_only_texts_the_rules_are_sure_of(tmp_path: Path, apod4: dict) -> None:
    files = _archive(tmp_path)
    weak = ApodArchiveSource(str(tmp_path), labels=apod4, progress=False).imageset()
    assert weak.ids == files
    labeller = Labeller(apod4)
    margins = []
    for title, text in TEXTS:
        res = labeller.label(title, text)
        margins.append(label_margin(res.scores, res.primary, labeller.other, labeller.min_score))
    cut = sorted(margins)[1] + 1e-6  # drops the two least sure texts
    sure = ApodArchiveSource(
        str(tmp_path), labels=apod4, targets="confident", min_margin=cut, progress=False
    ).imageset()
    kept = [f for f, m in zip(files, margins, strict=True) if m >= cut]
    assert sure.ids == kept and len(kept) == len(files) - 2
    assert list(sure.targets) == [weak.targets[files.index(f)] for f in kept]  # same labels
    assert sure.fingerprint != weak.fingerprint  # the cache is rebuilt for another set
    assert sure.meta["targets"] == "confident" and len(sure.meta["texts"]) == len(kept)


def test_fused_takes_the_files_labels_and_leaves_unnamed_pictures_out(
    tmp_path: Path, apod4: dict
) -> None:
    files = _archive(tmp_path / "archive")
    weak = ApodArchiveSource(str(tmp_path / "archive"), labels=apod4, progress=False).imageset()
    labels = tmp_path / "fused.csv"
    # picture 4 (the tied galaxy/star text) relabelled star; picture 5 not named: a twin
    # of a scored picture the study left out of the pool
    named = {files[0]: "galaxy", files[1]: "nebula", files[2]: "planet", files[3]: "star"}
    named[files[4]] = "star"
    labels.write_text(
        "file,label,weak,confidence\n" + "".join(f"{f},{lab},x,0.9\n" for f, lab in named.items())
    )
    fused = ApodArchiveSource(
        str(tmp_path / "archive"),
        labels=apod4,
        targets="fused",
        fused_labels=str(labels),
        progress=False,
    ).imageset()
    assert fused.ids == files[:5]
    assert [fused.classes[t] for t in fused.targets] == [named[f] for f in files[:5]]
    assert fused.classes[weak.targets[4]] != "star"  # the rules said otherwise
    assert fused.fingerprint != weak.fingerprint
    img = fused.load(4, 16)  # rows follow the subset
    assert img.shape[2] == 3


def test_only_files_restricts_any_targets_to_the_pool(tmp_path: Path, apod4: dict) -> None:
    """The study's pool (free of the scored pictures' re-cropped twins) as a file: the
    confident recipe trains on it, not on the whole folder."""
    files = _archive(tmp_path / "archive")
    pool = tmp_path / "pool.csv"
    pool.write_text("file,label\n" + "".join(f"{f},x\n" for f in files[1:4]))
    kept = ApodArchiveSource(
        str(tmp_path / "archive"), labels=apod4, only_files=str(pool), progress=False
    ).imageset()
    assert kept.ids == files[1:4]
    sure = ApodArchiveSource(
        str(tmp_path / "archive"),
        labels=apod4,
        only_files=str(pool),
        targets="confident",
        min_margin=0.0,
        progress=False,
    ).imageset()
    assert set(sure.ids) <= set(files[1:4])
    with pytest.raises(ConfigError, match="only_files"):
        ApodArchiveSource(
            str(tmp_path / "archive"), labels=apod4, only_files=str(tmp_path / "no.csv")
        )
    nofile = tmp_path / "nofile.csv"
    nofile.write_text("name\nx\n")
    with pytest.raises(DataError, match="`file` column"):
        ApodArchiveSource(
            str(tmp_path / "archive"), labels=apod4, only_files=str(nofile), progress=False
        ).imageset()


def test_bad_target_settings_say_what_to_do(tmp_path: Path, apod4: dict) -> None:
    _archive(tmp_path)
    with pytest.raises(ConfigError, match="targets"):
        ApodArchiveSource(str(tmp_path), labels=apod4, targets="gold")
    with pytest.raises(ConfigError, match="write-labels"):
        ApodArchiveSource(str(tmp_path), labels=apod4, targets="fused")
    other = tmp_path / "other.csv"
    other.write_text("file,label\nimages/elsewhere.jpg,star\n")
    with pytest.raises(DataError, match="names none"):
        ApodArchiveSource(
            str(tmp_path), labels=apod4, targets="fused", fused_labels=str(other), progress=False
        ).imageset()
    with pytest.raises(DataError, match="min_margin"):
        ApodArchiveSource(
            str(tmp_path), labels=apod4, targets="confident", min_margin=1e9, progress=False
        ).imageset()


def test_probe_learns_soft_targets_and_weights() -> None:
    """The study's probe: hard targets are one-hot soft targets; a weight of zero is (up to
    the standardisation, which sees every row) no row."""
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (40, 3)), rng.normal(3, 1, (40, 3))])
    y = np.repeat([0, 1], 40)
    hard = fit_probe(X, y, l2=1e-2)
    soft = fit_probe(X, np.eye(2)[y], l2=1e-2)
    np.testing.assert_allclose(hard.proba(X), soft.proba(X), atol=1e-4)
    assert (hard.proba(X).argmax(1) == y).mean() > 0.9
    flipped = y.copy()
    flipped[:10] = 1  # ten wrong labels, weighted out
    w = np.ones(len(y))
    w[:10] = 0.0
    np.testing.assert_allclose(
        fit_probe(X, flipped, w, l2=1e-2).proba(X[10:]),
        fit_probe(X[10:], y[10:], l2=1e-2).proba(X[10:]),
        atol=0.03,
    )
