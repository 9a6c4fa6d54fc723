"""Merge several people's bundles into one catalog without duplicates, and say what was decided.

Why a merge is more than importing one bundle after another: two people who scraped the
same days hold the same pictures (byte-identical, or a resized / re-encoded copy) under the
same or different days, with labels that may disagree. A merge groups every copy (the
target catalog's own rows included) by sha256, by ``(source, date)`` and by perceptual hash
(:mod:`astro_exp.sharing.dedupe`), keeps one row per group (a row already in the target,
else the largest copy), carries every person's corrections over to it, and settles label
disagreements with the configured rules (:mod:`astro_exp.sharing.label_rules`). When the
settled label is not what the kept row would otherwise train with, a correction by
``merge:<rule>`` records it. Everything is written in one transaction after all bundles
are verified; the report (JSON + a readable table) lists each removed copy and each
disagreement with the rule that decided it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from astro_exp.data.catalog import DONE_STATUSES, Catalog, catalog_path, now_iso
from astro_exp.data.store import ImageStore
from astro_exp.errors import ConfigError, DataError
from astro_exp.imageio import BadImage
from astro_exp.sharing.dedupe import Picture, group_copies, hamming, phash
from astro_exp.sharing.ingest import (
    StagedFiles,
    catalog_errors,
    staged,
    writer_lock,
)
from astro_exp.sharing.label_rules import Vote, decide, unique_votes, votes_of
from astro_exp.sharing.manifest import picture_entry, record_of
from astro_exp.sharing.settings import BundleLimits, MergeRules
from astro_exp.sharing.unpack import VerifiedBundle, open_bundle
from astro_exp.tables import report_table

CATALOG = "catalog"  # origin of the target catalog's own rows


@dataclass
class Member:
    """One copy of a picture: a bundle row or a row already in the target catalog."""

    origin: str  # bundle file name, or "catalog"
    creator: str
    entry: dict[str, Any]  # manifest-style row (PictureRecord fields + corrections)
    file: Path | None  # the picture file (unpacked bundle, or the target store)
    existing_id: int | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (str(self.entry["source"]), str(self.entry["date"]))

    @property
    def name(self) -> str:
        return f"{self.origin}:{self.key[0]}/{self.key[1]}"

    @property
    def pixels(self) -> int:
        return int(self.entry.get("width") or 0) * int(self.entry.get("height") or 0)


@dataclass
class MergeReport:
    """What a merge did; ``to_json`` is the file, ``text`` the readable tables."""

    created_at: str
    target: str
    bundles: list[dict[str, Any]]
    settings: dict[str, Any]
    rows_in: int = 0
    added: int = 0
    updated: int = 0
    kept_existing: int = 0
    files_added: int = 0
    corrections_added: int = 0
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    paths: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        exact = sum(d["kind"] == "exact" for d in self.duplicates)
        near = sum(d["kind"] == "near" for d in self.duplicates)
        day = sum(d["kind"] == "same-day" for d in self.duplicates)
        return (
            f"merged {len(self.bundles)} bundles into {self.target}: {self.rows_in} rows in, {self.added} added,"
            f" {self.updated} updated, {self.kept_existing} already there; duplicates removed: {exact} exact,"
            f" {near} near, {day} same day with another picture; {len(self.disagreements)} label disagreements"
        )

    def text(self) -> str:
        dup_rows = [(d["kind"], d["distance"], d["removed"], d["kept"]) for d in self.duplicates]
        dis_rows = [
            (
                d["picture"],
                ", ".join(f"{v['label']} ({v['kind']}, {v['who']})" for v in d["votes"]),
                d["label"],
                d["rule"],
            )
            for d in self.disagreements
        ]
        return "\n\n".join(
            [
                self.summary(),
                report_table(
                    "duplicates removed",
                    ("kind", "distance", "removed copy", "kept copy"),
                    dup_rows,
                    align="left",
                ),
                report_table(
                    "label disagreements",
                    ("picture", "votes (kind, who)", "label", "decided by"),
                    dis_rows,
                    align="left",
                ),
            ]
        )


def merge_bundles(
    bundles: Sequence[str | Path],
    target: str | Path,
    rules: MergeRules | None = None,
    limits: BundleLimits | None = None,
    report: str | Path | None = None,
    timeout: float = 30.0,
) -> MergeReport:
    """Merge ``bundles`` into the data folder ``target``; writes and returns the report."""
    if not bundles:
        raise ConfigError("merge needs at least one bundle: bundles=[a.tar.gz,b.tar.gz]")
    rules, limits = rules or MergeRules(), limits or BundleLimits()
    target = Path(target)
    store = ImageStore(target, max_pixels=limits.max_pixels, max_bytes=limits.max_member_bytes)
    path = catalog_path(target)
    with writer_lock(target), ExitStack() as stack:
        verified = [
            stack.enter_context(open_bundle(b, limits, tmp_parent=store.tmp_dir)) for b in bundles
        ]
        names = [vb.name for vb in verified]
        names = [n if names.count(n) == 1 else f"{i + 1}:{n}" for i, n in enumerate(names)]
        rep = _new_report(target, verified, names, rules)
        with Catalog(path, timeout=timeout) as cat, staged(store) as files, catalog_errors(path):
            members = _catalog_members(cat, store)
            for vb, n in zip(verified, names, strict=True):
                for e in vb.manifest["pictures"]:
                    members.append(
                        Member(n, vb.creator, e, vb.file(e["path"]) if e.get("path") else None)
                    )
            rep.rows_in = sum(m.existing_id is None for m in members)
            pictures = _pictures(members, limits.max_pixels)
            groups = group_copies(pictures, rules.near_duplicate_distance, rules.aspect_tolerance)
            with cat.transaction():
                for g in groups:
                    _merge_group(
                        cat, files, [members[i] for i in g], [pictures[i] for i in g], rules, rep
                    )
            rep.files_added = len(files.added)
    _write_report(rep, target, report)
    return rep


def _new_report(
    target: Path, verified: list[VerifiedBundle], names: list[str], rules: MergeRules
) -> MergeReport:
    """The report's heading: the target, each bundle (name, creator, date, size), the rules."""
    return MergeReport(
        created_at=now_iso(),
        target=str(target),
        bundles=[
            {
                "path": str(vb.path),
                "name": n,
                "creator": vb.creator,
                "created_at": vb.manifest.get("created_at"),
                "pictures": len(vb.manifest["pictures"]),
            }
            for vb, n in zip(verified, names, strict=True)
        ],
        settings={
            "rules": list(rules.rules),
            "near_duplicate_distance": rules.near_duplicate_distance,
            "aspect_tolerance": rules.aspect_tolerance,
        },
    )


def _catalog_members(cat: Catalog, store: ImageStore) -> list[Member]:
    """The target's finished rows, as copies that are kept whatever the bundles hold."""
    by_picture = cat.correction_history()
    out = []
    for r in cat.rows():
        if r.get("status") not in DONE_STATUSES:
            continue  # a failed day: a bundle's copy may fill it
        file = store.abspath(r["path"]) if r.get("path") else None
        entry = picture_entry(r, by_picture.get(int(r["id"]), []))
        out.append(
            Member(
                CATALOG, "catalog", entry, file if file and file.is_file() else None, int(r["id"])
            )
        )
    return out


def _pictures(members: list[Member], max_pixels: int) -> list[Picture]:
    """Grouping facts of each copy; one pHash per distinct file that can be read."""
    hashes: dict[str, int | None] = {}
    out = []
    for m in members:
        sha = m.entry.get("sha256") or None
        if sha and m.file is not None and hashes.get(sha) is None:
            try:
                hashes[sha] = phash(m.file, max_pixels)
            except BadImage:
                hashes[sha] = None  # unreadable in the target store: grouped by sha and day only
        width, height = m.entry.get("width"), m.entry.get("height")
        out.append(Picture(m.key, sha, width, height, hashes.get(sha) if sha else None))
    return out


def _merge_group(
    cat: Catalog,
    files: StagedFiles,
    group: list[Member],
    pics: list[Picture],
    rules: MergeRules,
    rep: MergeReport,
) -> None:
    """One group of copies: keep one row, record the removed copies, carry every person's
    corrections over to it and settle a label disagreement."""
    existing = [i for i, m in enumerate(group) if m.existing_id is not None]
    if len(existing) == len(group):
        return  # no bundle holds this picture: the target's own rows stay exactly as they are
    # a row already in the target wins; else the largest copy (the first on a tie)
    k = existing[0] if existing else max(range(len(group)), key=lambda i: (group[i].pixels, -i))
    keeper = group[k]
    pid = _write_keeper(cat, files, keeper, rep)
    for i, m in enumerate(group):
        if i != k and m.existing_id is None:
            rep.duplicates.append(_duplicate(m, pics[i], keeper, pics[k], rules))
    # the kept row and the bundles' copies speak; the target's other rows are left alone
    group = [m for i, m in enumerate(group) if i == k or m.existing_id is None]
    corrections = _union_corrections(group)
    rep.corrections_added += cat.merge_corrections(pid, corrections)
    if len(group) < 2:
        return
    votes = unique_votes(v for m in group for v in votes_of(m.entry, m.creator, m.name))
    if len({v.label for v in votes}) < 2:
        return
    rep.disagreements.append(_settle(cat, pid, keeper, group, votes, corrections, rules, rep))


def _write_keeper(cat: Catalog, files: StagedFiles, keeper: Member, rep: MergeReport) -> int:
    """The kept copy's picture id: a target row as it is, else the bundle row written (and its
    file placed in the store)."""
    if keeper.existing_id is not None:
        rep.kept_existing += 1
        return keeper.existing_id
    if keeper.file is not None and keeper.entry.get("path"):
        files.place(keeper.file, keeper.entry["path"])
    before = cat.get(*keeper.key)
    pid = cat.upsert(record_of(keeper.entry))
    rep.added += before is None
    rep.updated += before is not None
    return pid


def _settle(
    cat: Catalog,
    pid: int,
    keeper: Member,
    group: list[Member],
    votes: list[Vote],
    corrections: list[dict[str, Any]],
    rules: MergeRules,
    rep: MergeReport,
) -> dict[str, Any]:
    """Decide a disagreement by the rules; a correction by ``merge:<rule>`` when the decision
    is not what the kept row would train with. Returns the report's entry."""
    decision = decide(votes, rules.rules)
    current = (
        max(corrections, key=lambda c: c["created_at"])["label"]
        if corrections
        else ((keeper.entry.get("labels") or {}).get("primary"))
    )
    wrote = False
    if decision.label is not None and decision.label != current:
        mine = {"label": decision.label, "who": f"merge:{decision.rule}", "created_at": now_iso()}
        wrote = bool(cat.merge_corrections(pid, [mine]))
        rep.corrections_added += wrote
    return {
        "picture": f"{keeper.key[0]}/{keeper.key[1]}",
        "sha256": keeper.entry.get("sha256"),
        "copies": [m.name for m in group],
        "votes": [v.as_dict() for v in votes],
        "label": decision.label if decision.label is not None else current,
        "rule": decision.rule
        or f"undecided (a tie after {', '.join(rules.rules)}; kept {current})",
        "wrote_correction": wrote,
    }


def _duplicate(
    m: Member, p: Picture, keeper: Member, kp: Picture, rules: MergeRules
) -> dict[str, Any]:
    distance = hamming(p.hash, kp.hash) if p.hash is not None and kp.hash is not None else None
    if p.sha256 and p.sha256 == kp.sha256:
        kind, distance = "exact", 0
    elif distance is not None and distance <= rules.near_duplicate_distance:
        kind = "near"
    elif m.key == keeper.key:
        kind = "same-day"  # the same (source, date) with a different picture: the kept row wins
    else:
        kind = "near"  # a copy of a copy (chained through another near duplicate)
    return {
        "kind": kind,
        "distance": distance,
        "removed": m.name,
        "kept": keeper.name,
        "removed_sha256": m.entry.get("sha256"),
        "kept_sha256": keeper.entry.get("sha256"),
    }


def _union_corrections(group: list[Member]) -> list[dict[str, Any]]:
    seen, out = set(), []
    for m in group:
        for c in m.entry.get("corrections") or []:
            key = (c["label"], c["who"], c["created_at"])
            if key not in seen:
                seen.add(key)
                out.append({"label": c["label"], "who": c["who"], "created_at": c["created_at"]})
    return out


def _write_report(rep: MergeReport, target: Path, report: str | Path | None) -> None:
    json_path = (
        Path(report)
        if report
        else target / "reports" / f"merge-{rep.created_at.replace(':', '')[:17]}.json"
    )
    if json_path.suffix != ".json":
        json_path = json_path.with_suffix(".json")
    text_path = json_path.with_suffix(".txt")
    rep.paths = {"json": str(json_path), "text": str(text_path)}
    try:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(
            json.dumps(rep.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        text_path.write_text(rep.text() + "\n", encoding="utf-8")
    except OSError as e:
        raise DataError(
            f"merged, but could not write the report to {json_path} ({e}); pass report=PATH"
        ) from None


__all__ = ["MergeReport", "Vote", "merge_bundles"]
