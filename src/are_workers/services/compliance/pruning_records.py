"""Signed pruning records: the only evidence verification accepts for a gap in a chain.

Why outside the database: ``are_audit_drop_partition`` leaves an ``audit.pruned`` anchor in
``audit_log``, and the sealer continues a chain from it. But a database owner can write such
a row too (bypassing the trigger) after deleting any run of sealed rows, copying the last
deleted row's real hash. So when a partition is dropped, the drop's ranges are signed with
the head-signing key and written beside the signed heads (``ARE_AUDIT_HEAD_DIR``, write-once
storage the owner cannot reach), *before* the drop commits. Verification trusts those files,
never the table.

A record covers a gap only if

* its signature verifies under the audit public key;
* its partition's month ended at least the retention the signer applied (never under the
  one-year floor) before it was signed, and that partition no longer exists;
* the chain goes on after each of its ranges: a sealed row (or another pruned range)
  follows, whose ``prev_hash`` is the range's hash. A range nothing follows claims rows
  that were never sealed.

Records left by drops made before this check are signed once by ``sign_legacy``
(``are-workers compliance sign-pruning-records``) and reported as legacy by verification.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy import text
from sqlalchemy.orm import Session

from are_workers.config import Settings, get_settings
from are_workers.models.audit import AUDIT_PRUNE_FLOOR_DAYS
from are_workers.services.compliance.audit_keys import HeadSignatureError, key_id

_STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class PrunedRange:
    """A run of consecutive ``seq`` that a partition drop removed, and its last row's hash."""

    lo: int
    hi: int
    hash: str


@dataclass(frozen=True)
class PruningRecord:
    """One partition drop for one organization, as signed outside the database."""

    organization_id: uuid.UUID
    partition: str
    ranges: tuple[PrunedRange, ...]
    retention_days: int
    signed_at: datetime
    legacy: bool
    key_id: str
    path: Path | None = field(default=None, compare=False)


def head_dir(settings: Settings | None = None) -> Path:
    settings = settings or get_settings()
    return settings.audit_head_dir or settings.file_storage_dir / "audit-heads"


def partition_end(partition: str) -> datetime | None:
    """When a monthly partition's month ends (``audit_log_pYYYYMM``); None for other names."""
    prefix = "audit_log_p"
    digits = partition.removeprefix(prefix)
    if not partition.startswith(prefix) or len(digits) != 6 or not digits.isdigit():
        return None
    year, month = int(digits[:4]), int(digits[4:])
    if not 1 <= month <= 12:
        return None
    return datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


def _body(
    organization_id: uuid.UUID,
    partition: str,
    ranges: tuple[PrunedRange, ...],
    retention_days: int,
    signed_at: str,
    legacy: bool,
) -> dict[str, Any]:
    return {
        "kind": "audit.pruned",
        "organization_id": str(organization_id),
        "partition": partition,
        "ranges": [{"lo": r.lo, "hi": r.hi, "hash": r.hash} for r in ranges],
        "retention_days": retention_days,
        "signed_at": signed_at,
        "legacy": legacy,
    }


def _payload(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def ranges_of(value: Any) -> tuple[PrunedRange, ...]:
    """Ranges from the function's or the anchor row's JSON (``[{lo, hi, hash}, …]``)."""
    items = json.loads(value) if isinstance(value, str) else value or []
    return tuple(
        sorted(
            (PrunedRange(int(r["lo"]), int(r["hi"]), str(r["hash"])) for r in items),
            key=lambda r: r.lo,
        )
    )


def export_record(
    organization_id: uuid.UUID,
    partition: str,
    ranges: tuple[PrunedRange, ...],
    *,
    retention_days: int,
    key: Ed25519PrivateKey,
    directory: Path | None = None,
    legacy: bool = False,
    now: datetime | None = None,
) -> PruningRecord:
    """Sign one drop's ranges and write them as a new file (never overwritten)."""
    signed_at = (now or datetime.now(UTC)).astimezone(UTC)
    stamp = signed_at.strftime(_STAMP)
    body = _body(organization_id, partition, ranges, retention_days, stamp, legacy)
    kid = key_id(key.public_key())
    document = {
        **body,
        "key_id": kid,
        "signature": base64.b64encode(key.sign(_payload(body))).decode(),
    }
    folder = (directory or head_dir()) / str(organization_id) / "pruned"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{partition}-{stamp.replace(':', '')}.json"
    with path.open("x", encoding="utf-8") as handle:
        json.dump(document, handle, sort_keys=True, indent=2)
    return PruningRecord(
        organization_id, partition, ranges, retention_days, signed_at, legacy, kid, path
    )


def read_records(
    organization_id: uuid.UUID,
    *,
    public_key: Ed25519PublicKey,
    directory: Path | None = None,
) -> list[PruningRecord]:
    """Every signed pruning record of one organization, each signature checked."""
    folder = (directory or head_dir()) / str(organization_id) / "pruned"
    records = []
    for path in sorted(folder.glob("*.json")) if folder.exists() else []:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            ranges = ranges_of(document["ranges"])
            body = _body(
                uuid.UUID(document["organization_id"]),
                str(document["partition"]),
                ranges,
                int(document["retention_days"]),
                str(document["signed_at"]),
                bool(document["legacy"]),
            )
            public_key.verify(base64.b64decode(document["signature"]), _payload(body))
        except (InvalidSignature, ValueError, KeyError, TypeError):
            raise HeadSignatureError(
                f"The pruning record {path} does not verify: it was altered or signed "
                "with another key."
            ) from None
        records.append(
            PruningRecord(
                uuid.UUID(document["organization_id"]),
                body["partition"],
                ranges,
                body["retention_days"],
                datetime.strptime(body["signed_at"], _STAMP).replace(tzinfo=UTC),
                body["legacy"],
                str(document["key_id"]),
                path,
            )
        )
    return records


def existing_partitions(session: Session) -> set[str]:
    return set(
        session.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'audit_log'::regclass"
            )
        ).scalars()
    )


def refusal(record: PruningRecord, organization_id: uuid.UUID, existing: set[str]) -> str | None:
    """Why this record may not cover a gap, or None when it may."""
    if record.organization_id != organization_id:
        return f"the pruning record {record.path} belongs to another organization"
    end = partition_end(record.partition)
    if end is None:
        return f"the pruning record names {record.partition!r}, not a monthly audit partition"
    days = max(record.retention_days, AUDIT_PRUNE_FLOOR_DAYS)
    if end > record.signed_at - timedelta(days=days):
        return (
            f"the pruning record of {record.partition} covers a month too young to drop: it "
            f"ended {end:%Y-%m-%d}, under {days} days before the record was signed "
            f"({record.signed_at:%Y-%m-%d})"
        )
    if record.partition in existing:
        return (
            f"the pruning record of {record.partition} claims a drop, but that partition "
            "still exists"
        )
    return None


@dataclass
class Accepted:
    """The ranges verification may re-anchor at, and why other records were refused."""

    ranges: list[PrunedRange] = field(default_factory=list)
    refused: list[tuple[PrunedRange, str]] = field(default_factory=list)
    trusted: int = 0
    legacy: int = 0
    conflict: str | None = None

    def refusal_for(self, seq: int) -> str | None:
        return next((why for r, why in self.refused if r.lo <= seq <= r.hi), None)


def accept(session: Session, organization_id: uuid.UUID, records: list[PruningRecord]) -> Accepted:
    """Sort signed records into the ranges a gap may be covered by, and refusals."""
    existing = existing_partitions(session)
    out = Accepted()
    by_lo: dict[int, PrunedRange] = {}
    legacy_partitions = set()
    for record in records:
        why = refusal(record, organization_id, existing)
        if why is not None:
            out.refused.extend((r, why) for r in record.ranges)
            continue
        out.trusted += 1
        if record.legacy:
            legacy_partitions.add(record.partition)
        for pruned in record.ranges:
            known = by_lo.setdefault(pruned.lo, pruned)
            if known != pruned and out.conflict is None:
                out.conflict = (
                    f"two signed pruning records disagree about seq {pruned.lo}: "
                    f"{known.lo}..{known.hi} vs {pruned.lo}..{pruned.hi}"
                )
    out.ranges = sorted(by_lo.values(), key=lambda r: r.lo)
    out.legacy = len(legacy_partitions)
    return out


# --- the upgrade path ---------------------------------------------------------------------------


@dataclass
class LegacyOutcome:
    organization_id: uuid.UUID
    partition: str
    status: str  # signed | already-signed | refused
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "organization_id": str(self.organization_id),
            "partition": self.partition,
            "status": self.status,
            "reason": self.reason,
        }


def _followed(session: Session, organization_id: uuid.UUID, pruned: PrunedRange) -> bool:
    """A sealed row follows the range and points at its hash (or another range follows)."""
    return bool(
        session.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM audit_log WHERE organization_id = :o "
                "AND seq = :next AND prev_hash = :hash)"
            ),
            {"o": organization_id, "next": pruned.hi + 1, "hash": pruned.hash},
        ).scalar_one()
    )


def sign_legacy(
    session: Session,
    *,
    key: Ed25519PrivateKey,
    directory: Path | None = None,
    now: datetime | None = None,
) -> list[LegacyOutcome]:
    """Sign and export the pruning anchors in ``audit_log`` that no signed record covers yet.

    A one-off after upgrading: drops made before pruning records were signed left only the
    table's anchor. It is trusted as it stands today (reported as legacy ever after), but an
    anchor verification would refuse anyway is not signed: a month too young to drop under
    the organization's retention, a partition that still exists, or a range no sealed row
    follows (rows that were never sealed).
    """
    from are_workers.models.audit import AuditLog
    from are_workers.services.compliance.registry import (
        load_retention_overrides,
        resolve_retention,
    )

    now = now or datetime.now(UTC)
    existing = existing_partitions(session)
    anchors = session.execute(
        text(
            "SELECT organization_id, output_refs->>'partition' AS partition, "
            "output_refs->'ranges' AS ranges FROM audit_log "
            "WHERE action = 'audit.pruned' AND entity_type = 'audit_log' "
            "ORDER BY organization_id, occurred_at, id"
        )
    ).all()
    public = key.public_key()
    outcomes = []
    for anchor in anchors:
        org, partition = anchor.organization_id, str(anchor.partition)
        ranges = ranges_of(anchor.ranges)
        signed = read_records(org, public_key=public, directory=directory)
        covered = {(r.lo, r.hi, r.hash) for record in signed for r in record.ranges}
        if all((r.lo, r.hi, r.hash) in covered for r in ranges):
            outcomes.append(LegacyOutcome(org, partition, "already-signed"))
            continue
        retention = resolve_retention(
            AuditLog.__table__,  # type: ignore[arg-type]
            None,
            load_retention_overrides(session, org),
        )
        days = max(retention.days or AUDIT_PRUNE_FLOOR_DAYS, AUDIT_PRUNE_FLOOR_DAYS)
        ranged = {r.lo for r in ranges}
        unfollowed = [
            r for r in ranges if r.hi + 1 not in ranged and not _followed(session, org, r)
        ]
        probe = PruningRecord(org, partition, ranges, days, now, True, key_id(public))
        why = refusal(probe, org, existing)
        if why is None and unfollowed:
            r = unfollowed[0]
            why = (
                f"no sealed row follows seq {r.lo}..{r.hi} with its hash: those rows were "
                "never sealed, or the anchor is forged"
            )
        if why is not None:
            outcomes.append(LegacyOutcome(org, partition, "refused", why))
            continue
        export_record(
            org,
            partition,
            ranges,
            retention_days=days,
            key=key,
            directory=directory,
            legacy=True,
            now=now,
        )
        outcomes.append(LegacyOutcome(org, partition, "signed"))
    return outcomes
