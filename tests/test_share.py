"""Dataset bundles: export/import round trip, refusal of bad bundles, merges, W&B artifacts.

Every test builds a small real catalog with real PNG/JPEG pictures under tmp_path; the
W&B tests run W&B for real in offline mode (no mocks, no network).
"""

from __future__ import annotations

import io
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from astro_exp.data.catalog import CORRECTIONS, Catalog, PictureRecord, catalog_path
from astro_exp.data.store import ImageStore
from astro_exp.errors import ConfigError, DataError
from astro_exp.sharing import (
    BundleFilter,
    BundleLimits,
    BundleRefused,
    MergeRules,
    export_bundle,
    import_bundle,
    load_settings,
    merge_bundles,
    merge_rules,
)
from astro_exp.sharing.dedupe import hamming, phash
from astro_exp.sharing.manifest import RECORD_FIELDS

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = "scripts/dataset.py"


def run_script(
    args: list[str], env: dict | None = None, timeout: int = 300
) -> subprocess.CompletedProcess:
    """Run an entry point the way a user does (as tests/conftest.py's run_script; importable
    here whether pytest runs as ``pytest`` or ``python -m pytest``)."""
    full_env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    full_env.pop("WANDB_API_KEY", None)
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# -- building catalogs -------------------------------------------------------------------------
def picture(
    seed: int, size: tuple[int, int] = (96, 64), fmt: str = "PNG", quality: int = 92
) -> bytes:
    """A smooth random colour picture (distinct seeds give distinct perceptual hashes)."""
    rng = np.random.default_rng(seed)
    small = (rng.random((5, 7, 3)) * 255).astype(np.uint8)
    im = Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)
    return encode(im, fmt, quality)


def encode(im: Image.Image, fmt: str, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return buf.getvalue()


def resized_copy(data: bytes, factor: float = 0.5, quality: int = 80) -> bytes:
    """The same picture smaller and re-encoded as JPEG (what an 'HD vs standard' pair looks like)."""
    with Image.open(io.BytesIO(data)) as im:
        w, h = im.size
        small = im.convert("RGB").resize(
            (int(w * factor), int(h * factor)), Image.Resampling.LANCZOS
        )
    return encode(small, "JPEG", quality)


def add_picture(
    data_dir: Path,
    date: str,
    data: bytes,
    label: str,
    corrections: list[tuple[str, str, str]] = (),
    source: str = "apod",
    title: str | None = None,
) -> int:
    """One catalog row as the scraper writes it, with corrections (label, who, when)."""
    store = ImageStore(data_dir)
    stored = store.add_bytes(data)
    day = date.replace("-", "")[2:]
    rec = PictureRecord(
        source=source,
        date=date,
        status="ok",
        page_url=f"https://apod.nasa.gov/apod/ap{day}.html",
        image_url=f"https://apod.nasa.gov/apod/image/{day}.{stored.path.rsplit('.', 1)[1]}",
        title=title or f"Picture of {date}",
        explanation=f"What we see on {date}. Credit matters.",
        credit="A. Astronomer (Some Observatory)",
        copyright="A. Astronomer",
        media_type="image",
        sha256=stored.sha256,
        path=stored.path,
        width=stored.width,
        height=stored.height,
        bytes=stored.bytes,
        fetched_at=f"{date}T12:00:00+00:00",
        labels={"primary": label, "all": [label], "scores": {label: 3.0}, "version": "apod4-test"},
    )
    with Catalog(catalog_path(data_dir)) as cat:
        pid = cat.upsert(rec)
        with cat.transaction():
            for lab, who, when in corrections:
                cat.conn.execute(
                    f"INSERT INTO {CORRECTIONS} (picture_id, label, who, created_at) VALUES (?, ?, ?, ?)",
                    (pid, lab, who, when),
                )
    return pid


def add_video(data_dir: Path, date: str) -> None:
    with Catalog(catalog_path(data_dir)) as cat:
        cat.upsert(
            PictureRecord(
                source="apod",
                date=date,
                status="video",
                media_type="video",
                page_url="https://apod.nasa.gov/apod/x.html",
                title="A video",
                credit="B. C.",
            )
        )


def dump(data_dir: Path) -> tuple[list, list, list]:
    """Everything a catalog and its store hold (to prove that nothing changed)."""
    if not catalog_path(data_dir).is_file():
        return [], [], []
    with Catalog(catalog_path(data_dir)) as cat:
        pics = [tuple(r) for r in cat.conn.execute("SELECT * FROM pictures ORDER BY id")]
        corr = [tuple(r) for r in cat.conn.execute(f"SELECT * FROM {CORRECTIONS} ORDER BY id")]
    root = data_dir / "images"
    files = sorted(
        (p.relative_to(data_dir).as_posix(), p.read_bytes()) for p in root.rglob("*") if p.is_file()
    )
    return pics, corr, files


def rows_by_key(data_dir: Path) -> dict[tuple[str, str], dict]:
    with Catalog(catalog_path(data_dir)) as cat:
        rows = {(r["source"], r["date"]): r for r in cat.rows()}
        corr = {}
        for c in cat.conn.execute(
            f"SELECT picture_id, label, who, created_at FROM {CORRECTIONS} ORDER BY created_at, id"
        ):
            corr.setdefault(c[0], []).append((c[1], c[2], c[3]))
    for r in rows.values():
        r["corrections"] = corr.get(r["id"], [])
    return rows


def truth(data_dir: Path) -> dict[tuple[str, str], str]:
    """The label training uses per row: the newest correction, else the weak label."""
    with Catalog(catalog_path(data_dir)) as cat:
        fixed = cat.corrections()
        return {
            (r["source"], r["date"]): fixed.get(r["id"], (r.get("labels") or {}).get("primary"))
            for r in cat.rows()
        }


@pytest.fixture
def source_dir(tmp_path: Path) -> Path:
    """A catalog with PNG and JPEG pictures, corrections and a video day."""
    d = tmp_path / "alice"
    add_picture(d, "2024-01-01", picture(1), "galaxy", title="The Andromeda Galaxy")
    add_picture(
        d,
        "2024-01-02",
        picture(2, fmt="JPEG"),
        "nebula",
        corrections=[
            ("star", "alice", "2024-02-01T10:00:00+00:00"),
            ("nebula", "bob", "2024-02-03T10:00:00+00:00"),
        ],
    )
    add_picture(d, "2024-01-03", picture(3, size=(80, 80)), "planet")
    add_video(d, "2024-01-04")
    add_picture(d, "2023-12-31", picture(4), "star")
    return d


def bundle_members(path: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    with tarfile.open(path, "r:gz") as tar:
        return [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()]


def write_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def tampered(good: Path, out: Path, change: Callable[[list], list]) -> Path:
    return write_tar(out, change(bundle_members(good)))


# -- export / import ------------------------------------------------------------------------
def test_round_trip_is_lossless_and_reimport_changes_nothing(
    source_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "alice.tar.gz"
    res = export_bundle(source_dir, out, BundleFilter(status="done"), creator="alice")
    assert (res.pictures, res.files, res.corrections) == (5, 4, 2)
    manifest = json.loads(dict((m.name, d) for m, d in bundle_members(out))["manifest.json"])
    assert manifest["creator"] == "alice" and manifest["format_version"] == 1
    assert {f["path"] for f in manifest["files"]} == {
        r["path"] for r in manifest["pictures"] if r["path"]
    }

    target = tmp_path / "bob"
    first = import_bundle(out, target)
    assert (first.added, first.updated, first.files_added, first.corrections_added) == (5, 0, 4, 2)
    before, after = rows_by_key(source_dir), rows_by_key(target)
    assert set(before) == set(after)
    for key, row in before.items():
        assert {k: row[k] for k in RECORD_FIELDS} == {k: after[key][k] for k in RECORD_FIELDS}, key
        assert row["corrections"] == after[key]["corrections"]
        if row["path"]:
            assert (source_dir / row["path"]).read_bytes() == (
                target / after[key]["path"]
            ).read_bytes()
    assert truth(source_dir) == truth(target)

    snapshot = dump(target)
    again = import_bundle(out, target)
    assert (
        again.added,
        again.updated,
        again.unchanged,
        again.corrections_added,
        again.files_added,
    ) == (0, 0, 5, 0, 0)
    assert dump(target) == snapshot
    assert not any((target / "images" / ".tmp").iterdir())  # the unpack folder is gone


def test_export_filter_and_label_config(source_dir: Path, tmp_path: Path) -> None:
    res = export_bundle(
        source_dir, tmp_path / "b.tar.gz", BundleFilter(since="2024-01-01", labels="apod4")
    )
    dates = [p["date"] for p in res.manifest["pictures"]]
    assert dates == ["2024-01-01", "2024-01-02", "2024-01-03"]  # no 2023 day, no video (status=ok)
    assert res.manifest["labels"]["config"] == "apod4" and res.manifest["labels"][
        "version"
    ].startswith("apod4-")
    assert res.manifest["pictures"][0]["labels"]["primary"] == "galaxy"
    assert res.manifest["pictures"][0]["labels"]["version"] == res.manifest["labels"]["version"]
    # the catalog itself keeps its labels
    assert rows_by_key(source_dir)[("apod", "2024-01-01")]["labels"]["version"] == "apod4-test"
    with pytest.raises(DataError, match="no catalog rows match"):
        export_bundle(source_dir, tmp_path / "c.tar.gz", BundleFilter(since="2030-01-01"))
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        export_bundle(source_dir, tmp_path / "c.tar.gz", BundleFilter(since="yesterday"))


@pytest.fixture
def good_bundle(source_dir: Path, tmp_path: Path) -> Path:
    return export_bundle(source_dir, tmp_path / "good.tar.gz", creator="alice").path


@pytest.fixture
def target_dir(tmp_path: Path) -> Path:
    """A data folder that already holds a picture (so 'unchanged' is not trivially an empty folder)."""
    d = tmp_path / "target"
    add_picture(
        d,
        "2022-05-05",
        picture(50),
        "star",
        corrections=[("galaxy", "carol", "2022-06-01T00:00:00+00:00")],
    )
    return d


def _flip_one(members: list) -> list:
    done, out = False, []
    for info, data in members:
        if not done and data is not None and info.name.startswith("images/"):
            data = bytearray(data)
            data[len(data) // 2] ^= 0x01
            data, done = bytes(data), True
        out.append((info, data))
    return out


def _with(extra: tarfile.TarInfo, data: bytes | None = None) -> Callable[[list], list]:
    return lambda members: [*members, (extra, data)]


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def _file(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def _edit_manifest(edit: Callable[[dict], None]) -> Callable[[list], list]:
    def change(members: list) -> list:
        out = []
        for info, data in members:
            if info.name == "manifest.json":
                manifest = json.loads(data)
                edit(manifest)
                data = json.dumps(manifest).encode()
            out.append((info, data))
        return out

    return change


def _future(m: dict) -> None:
    m["format_version"] = 99


def _repoint(m: dict) -> None:
    m["pictures"][0]["path"] = m["pictures"][1]["path"]


BAD_BUNDLES = {
    "manifest from a newer astro-exp": (_edit_manifest(_future), "upgrade it"),
    "manifest row points at another file": (_edit_manifest(_repoint), "bad manifest"),
    "manifest not json": (
        lambda ms: [(i, b"{oops" if i.name == "manifest.json" else d) for i, d in ms],
        "not valid JSON",
    ),
    "changed picture byte": (_flip_one, "does not match its sha256"),
    "path traversal": (_with(_file("../evil.png"), b"x"), "path traversal"),
    "nested traversal": (_with(_file("images/../../evil.png"), b"x"), "path traversal"),
    "absolute path": (_with(_file("/tmp/evil.png"), b"x"), "absolute path"),
    "symlink": (_with(_link("images/ab/cd/link.png", "/etc/passwd", tarfile.SYMTYPE)), "is a link"),
    "hardlink": (_with(_link("images/ab/hard", "manifest.json", tarfile.LNKTYPE)), "is a link"),
    "device": (_with(_link("images/dev", "", tarfile.CHRTYPE)), "device"),
    "unexpected file": (_with(_file("run_me.sh"), b"rm -rf /"), "unexpected member"),
    "unlisted picture": (
        _with(_file("images/00/00/" + "0" * 64 + ".png"), b"x"),
        "not in the manifest",
    ),
    "missing picture": (
        lambda ms: [m for m in ms if not m[0].name.startswith("images/")],
        "missing from the archive",
    ),
    "no manifest": (lambda ms: [m for m in ms if m[0].name != "manifest.json"], "no manifest.json"),
    "duplicate member": (lambda ms: [*ms, ms[-1]], "appears twice"),
}


@pytest.mark.parametrize("case", list(BAD_BUNDLES))
def test_bad_bundle_is_refused_and_nothing_changes(
    case: str, good_bundle: Path, target_dir: Path, tmp_path: Path
) -> None:
    change, message = BAD_BUNDLES[case]
    bad = tampered(good_bundle, tmp_path / "bad.tar.gz", change)
    before = dump(target_dir)
    with pytest.raises(BundleRefused, match=message) as err:
        import_bundle(bad, target_dir)
    assert "\n" not in str(err.value) and "nothing was imported" in str(err.value)
    assert dump(target_dir) == before
    assert not (tmp_path / "evil.png").exists() and not Path("/tmp/evil.png").exists()
    assert not any((target_dir / "images" / ".tmp").iterdir())


def test_damaged_archive_bytes_are_refused(
    good_bundle: Path, target_dir: Path, tmp_path: Path
) -> None:
    data = bytearray(good_bundle.read_bytes())
    before = dump(target_dir)
    for i, pos in enumerate(
        (len(data) // 3, len(data) // 2, len(data) - 6)
    ):  # compressed data, gzip trailer (CRC)
        bad = bytearray(data)
        bad[pos] ^= 0xFF
        path = tmp_path / f"damaged{i}.tar.gz"
        path.write_bytes(bytes(bad))
        with pytest.raises(BundleRefused):
            import_bundle(path, target_dir)
        assert dump(target_dir) == before
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(BundleRefused, match="not a readable"):
        import_bundle(truncated, target_dir)
    assert dump(target_dir) == before


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (BundleLimits(max_bytes=2_000), "over bundle.max_bytes"),
        (BundleLimits(max_member_bytes=300), "over bundle.max_member_bytes"),
        (BundleLimits(max_members=2), "more than bundle.max_members"),
        (BundleLimits(max_pixels=1_000), "not an acceptable picture"),
    ],
)
def test_oversize_bundle_is_refused(
    limits: BundleLimits, message: str, good_bundle: Path, target_dir: Path
) -> None:
    before = dump(target_dir)
    with pytest.raises(BundleRefused, match=message):
        import_bundle(good_bundle, target_dir, limits)
    assert dump(target_dir) == before


def test_unpacked_size_limit_counts_the_files(good_bundle: Path, target_dir: Path) -> None:
    """The archive is small (compressed), but its files unpack to more than max_bytes."""
    size = good_bundle.stat().st_size
    with pytest.raises(BundleRefused, match="unpack to more than"):
        import_bundle(good_bundle, target_dir, BundleLimits(max_bytes=size + 10))


def test_busy_catalog_leaves_no_new_store_files(good_bundle: Path, target_dir: Path) -> None:
    """A failure after the pictures were moved into the store takes them out again."""
    before = dump(target_dir)
    blocker = sqlite3.connect(catalog_path(target_dir), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the catalog
    try:
        with pytest.raises(DataError, match="busy"):
            import_bundle(good_bundle, target_dir, timeout=0.2)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert dump(target_dir) == before
    # and it works once the catalog is free
    assert import_bundle(good_bundle, target_dir).added == 4


# -- merge --------------------------------------------------------------------------------------
@pytest.fixture
def two_bundles(tmp_path: Path) -> tuple[Path, Path]:
    """Alice's and Bob's catalogs overlap:

    - 01-01 the same bytes in both (exact duplicate), labels agree;
    - alice 01-02 / bob 02-10: bob's copy is alice's picture resized and re-encoded (near
      duplicate), weak labels disagree (nebula / star): a tie, settled by the newest;
    - 01-03 the same picture; bob corrected it to nebula (correction over weak label);
    - 01-04 star for alice twice (she has it on 01-04 and as a repost on 03-01) and
      nebula for bob: star wins by majority;
    - each has one picture of their own.
    """
    a, b = tmp_path / "merge_alice", tmp_path / "merge_bob"
    x, y, z, w = picture(11), picture(12, size=(128, 96)), picture(13), picture(14, fmt="JPEG")
    add_picture(a, "2024-01-01", x, "galaxy")
    add_picture(a, "2024-01-02", y, "nebula")
    add_picture(a, "2024-01-03", z, "star")
    add_picture(a, "2024-01-04", w, "star")
    add_picture(a, "2024-03-01", w, "star")
    add_picture(a, "2024-01-05", picture(15), "planet")
    add_picture(b, "2024-01-01", x, "galaxy")
    add_picture(b, "2024-02-10", resized_copy(y), "star")
    add_picture(
        b, "2024-01-03", z, "star", corrections=[("nebula", "bob", "2024-01-20T08:00:00+00:00")]
    )
    add_picture(b, "2024-01-04", w, "nebula")
    add_picture(b, "2024-01-06", picture(16), "galaxy")
    return (
        export_bundle(a, tmp_path / "alice.tar.gz", creator="alice").path,
        export_bundle(b, tmp_path / "bob.tar.gz", creator="bob").path,
    )


def test_test_pictures_are_near_duplicates_only_when_copied(tmp_path: Path) -> None:
    files = {}
    for name, data in {
        "y": picture(12, size=(128, 96)),
        "y_small": resized_copy(picture(12, size=(128, 96))),
        "x": picture(11),
        "z": picture(13),
    }.items():
        files[name] = tmp_path / name
        files[name].write_bytes(data)
    h = {k: phash(p) for k, p in files.items()}
    assert hamming(h["y"], h["y_small"]) <= 6
    assert min(hamming(h["x"], h["z"]), hamming(h["x"], h["y"]), hamming(h["y"], h["z"])) > 12


def test_merge_of_overlapping_bundles_has_no_duplicates_and_reports_disagreements(
    two_bundles: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "merged"
    rep = merge_bundles(list(two_bundles), out, MergeRules())
    rows = rows_by_key(out)
    shas = [r["sha256"] for r in rows.values()]
    assert len(shas) == len(set(shas)) == 6  # 11 rows in, 5 copies removed
    hashes = [phash(out / r["path"]) for r in rows.values()]
    assert all(hamming(a, b) > 6 for i, a in enumerate(hashes) for b in hashes[i + 1 :])
    assert rep.rows_in == 11 and rep.added == 6

    kinds = sorted((d["kind"], d["removed"]) for d in rep.duplicates)
    assert kinds == [
        ("exact", "alice.tar.gz:apod/2024-03-01"),
        ("exact", "bob.tar.gz:apod/2024-01-01"),
        ("exact", "bob.tar.gz:apod/2024-01-03"),
        ("exact", "bob.tar.gz:apod/2024-01-04"),
        ("near", "bob.tar.gz:apod/2024-02-10"),
    ]
    near = next(d for d in rep.duplicates if d["kind"] == "near")
    # the larger copy is kept
    assert near["kept"] == "alice.tar.gz:apod/2024-01-02" and near["distance"] <= 6

    decided = {d["picture"]: (d["label"], d["rule"]) for d in rep.disagreements}
    assert decided == {
        # nebula vs star, one each: bob's row was fetched later
        "apod/2024-01-02": ("star", "newest"),
        "apod/2024-01-03": ("nebula", "correction"),
        "apod/2024-01-04": ("star", "majority"),
    }
    labels = truth(out)
    assert labels[("apod", "2024-01-02")] == "star" and labels[("apod", "2024-01-03")] == "nebula"
    assert labels[("apod", "2024-01-04")] == "star" and labels[("apod", "2024-01-01")] == "galaxy"
    # bob's correction travelled with his copy
    assert rows[("apod", "2024-01-03")]["corrections"][0][:2] == ("nebula", "bob")
    assert rows[("apod", "2024-01-02")]["corrections"][-1][:2] == ("star", "merge:newest")

    saved = json.loads(Path(rep.paths["json"]).read_text())
    assert len(saved["disagreements"]) == 3 and len(saved["duplicates"]) == 5
    text = Path(rep.paths["text"]).read_text()
    assert "label disagreements" in text and "decided by" in text and "majority" in text

    again = merge_bundles(list(two_bundles), out, MergeRules())  # merging again adds nothing
    assert again.added == 0 and again.kept_existing == 6 and again.corrections_added == 0
    assert len(rows_by_key(out)) == 6


def test_merge_rules_come_from_config(two_bundles: tuple[Path, Path], tmp_path: Path) -> None:
    rules = merge_rules(
        load_settings(["merge.rules=[majority,newest]", "merge.near_duplicate_distance=0"])
    )
    assert rules.rules == ("majority", "newest") and rules.near_duplicate_distance == 0
    rep = merge_bundles(list(two_bundles), tmp_path / "m", rules)
    decided = {d["picture"]: (d["label"], d["rule"]) for d in rep.disagreements}
    # bob's correction (nebula) against alice's weak star: one each, and the correction is newer
    assert decided["apod/2024-01-03"] == ("nebula", "newest")
    assert len(rows_by_key(tmp_path / "m")) == 7  # near duplicates kept apart with distance 0
    with pytest.raises(ConfigError, match="merge.rules"):
        merge_rules(load_settings(["merge.rules=[loudest]"]))


def test_merge_into_a_catalog_keeps_its_rows_and_is_all_or_nothing(
    two_bundles: tuple[Path, Path], tmp_path: Path
) -> None:
    alice_bundle, bob_bundle = two_bundles
    home = tmp_path / "home"
    import_bundle(alice_bundle, home)
    ids = {k: r["id"] for k, r in rows_by_key(home).items()}
    rep = merge_bundles([bob_bundle], home, MergeRules())
    rows = rows_by_key(home)
    assert {k: ids[k] for k in ids} == {k: rows[k]["id"] for k in ids}  # existing rows untouched
    assert set(rows) - set(ids) == {("apod", "2024-01-06")}  # bob's only new picture
    # bob's copies of 01-01, 01-02 (near), 01-03 and 01-04 matched rows already there
    assert rep.kept_existing == 4 and rep.added == 1
    assert {d["kept"] for d in rep.duplicates} == {
        f"catalog:apod/2024-01-0{i}" for i in (1, 2, 3, 4)
    }
    # a bad bundle among good ones: nothing at all is merged
    bad = tampered(bob_bundle, tmp_path / "bad.tar.gz", _flip_one)
    before = dump(home)
    with pytest.raises(BundleRefused):
        merge_bundles([alice_bundle, bad], home, MergeRules())
    assert dump(home) == before


# -- command line ------------------------------------------------------------------------------
def test_cli_export_import_merge(
    source_dir: Path, two_bundles: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "cli.tar.gz"
    res = run_script(
        [
            SCRIPT,
            "export",
            f"out={out}",
            "since=2024-01-01",
            f"data_dir={source_dir}",
            "labels=apod4",
        ]
    )
    assert res.returncode == 0, res.stderr
    assert "wrote" in res.stdout and "3 pictures" in res.stdout and out.is_file()
    target = tmp_path / "cli_target"
    res = run_script([SCRIPT, "import", f"bundle={out}", f"data_dir={target}"])
    assert res.returncode == 0, res.stderr
    assert "3 new rows" in res.stdout and len(rows_by_key(target)) == 3
    res = run_script(
        [
            SCRIPT,
            "merge",
            f"bundles=[{two_bundles[0]},{two_bundles[1]}]",
            f"out={tmp_path / 'cli_merged'}",
            "merge.rules=[correction,majority,newest]",
        ]
    )
    assert res.returncode == 0, res.stderr
    assert (
        "label disagreements" in res.stdout
        and "duplicates removed" in res.stdout
        and "report:" in res.stdout
    )
    help_ = run_script([SCRIPT, "export", "--help"])
    assert help_.returncode == 0 and "since=" in help_.stdout and "out=" in help_.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["import", "bundle=nowhere.tar.gz"], "error: no bundle at nowhere.tar.gz"),
        (["import"], "error: import needs bundle="),
        (["export", "out=x.tar.gz", "colour=red"], "error: export: unknown key 'colour'"),
        (["merge", "bundles=[a.tar.gz]", "merge.rules=[loudest]"], "error: merge.rules"),
    ],
)
def test_cli_bad_input_is_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    res = run_script([SCRIPT, *args, f"data_dir={tmp_path}"])
    assert res.returncode == 2
    assert res.stderr.startswith(message) and res.stderr.count("\n") == 1, res.stderr


def test_cli_refuses_a_tampered_bundle_in_one_line(
    good_bundle: Path, target_dir: Path, tmp_path: Path
) -> None:
    bad = tampered(good_bundle, tmp_path / "bad.tar.gz", _with(_file("../evil.png"), b"x"))
    before = dump(target_dir)
    res = run_script([SCRIPT, "import", f"bundle={bad}", f"data_dir={target_dir}"])
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert res.stderr.startswith("error: refusing bundle bad.tar.gz: member '../evil.png'")
    assert dump(target_dir) == before


# -- W&B artifacts (real wandb, offline) --------------------------------------------------------
def _wandb_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {
        "HOME": str(home),
        "WANDB_DATA_DIR": str(home / "wandb-data"),
        "WANDB_CACHE_DIR": str(home / "wandb-cache"),
        "WANDB_CONFIG_DIR": str(home / "wandb-config"),
        "NETRC": str(home / ".netrc"),
        **extra,
    }


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("why", ["offline mode", "no api key", "unreachable server"])
def test_publish_without_a_connection_says_so_and_keeps_the_bundle(
    why: str, source_dir: Path, tmp_path: Path
) -> None:
    env = _wandb_env(tmp_path, WANDB_MODE="offline" if why == "offline mode" else "")
    if why == "unreachable server":
        port = _closed_port()
        (Path(env["HOME"]) / ".netrc").write_text(
            "machine 127.0.0.1 login user password k" + "0" * 39 + "\n"
        )
        os.chmod(Path(env["HOME"]) / ".netrc", 0o600)
        env["WANDB_BASE_URL"] = f"http://127.0.0.1:{port}"
    res = run_script(
        [SCRIPT, "publish", "artifact=astro-apod", f"data_dir={source_dir}"], env=env, timeout=120
    )
    bundle = source_dir / "bundles" / "astro-apod.tar.gz"
    assert res.returncode == 2
    line = f"error: publish needs a connection to W&B (set WANDB_API_KEY, go online); the bundle stays at {bundle}"
    assert res.stderr.startswith(line) and res.stderr.count("\n") == 1, res.stderr
    assert {
        "offline mode": "WANDB_MODE is offline",
        "no api key": "no W&B API key",
        "unreachable server": "cannot reach",
    }[why] in res.stderr
    assert bundle.is_file() and "wrote" in res.stdout
    assert not (source_dir / "wandb").exists()  # no run was started


def test_pull_without_a_connection_says_so_and_imports_nothing(
    target_dir: Path, tmp_path: Path
) -> None:
    before = dump(target_dir)
    res = run_script(
        [SCRIPT, "pull", "artifact=team/astro-apod:latest", f"data_dir={target_dir}"],
        env=_wandb_env(tmp_path, WANDB_MODE="offline"),
        timeout=120,
    )
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert res.stderr.startswith(
        "error: pull needs a connection to W&B (set WANDB_API_KEY, go online); nothing was imported"
    )
    assert dump(target_dir) == before
    bad = run_script(
        [SCRIPT, "pull", "artifact=a/b/c/d", f"data_dir={target_dir}"], env=_wandb_env(tmp_path)
    )
    assert bad.returncode == 2 and "error: artifact=a/b/c/d is not" in bad.stderr


@pytest.mark.slow
def test_publish_offline_logs_the_artifact_into_a_local_run(
    good_bundle: Path, tmp_path: Path
) -> None:
    env = _wandb_env(tmp_path, WANDB_MODE="offline")
    runs = tmp_path / "runs"
    res = run_script(
        [
            SCRIPT,
            "publish",
            "artifact=astro-apod",
            f"bundle={good_bundle}",
            "offline=true",
            f"data_dir={runs}",
            "aliases=[first]",
        ],
        env=env,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert (
        "logged dataset artifact astro-apod into the offline run" in res.stdout
        and "wandb sync" in res.stdout
    )
    run_files = list((runs / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(run_files) == 1
    record = run_files[0].read_bytes()
    assert (
        b"astro-apod" in record
        and b"dataset-publish" in record
        and good_bundle.name.encode() in record
    )
    staged = [p for p in (Path(env["WANDB_DATA_DIR"]) / "artifacts").rglob("*") if p.is_file()]
    # the bundle's bytes are staged for `wandb sync`
    assert any(p.read_bytes() == good_bundle.read_bytes() for p in staged)
