"""The tamper-evident audit chain: sealing, verification and signed head exports.

* **Seal.** Writers only INSERT (``audit.record``). The sealer takes each organization's
  unsealed rows in ``(occurred_at, id)`` order and gives them ``seq``, ``prev_hash`` and
  ``row_hash = audit_row_hash(row, seq, prev_hash)``, under a per-organization advisory lock
  (the pruning function takes the same lock). The append-only trigger lets an UPDATE do
  exactly that and nothing else; the runtime role may update only those three columns.
* **Verify.** Recompute the chain in ``seq`` order and report the *first* broken link: a
  changed row (its hash no longer matches), a removed row (a gap, or a ``prev_hash`` that
  points elsewhere), or a chain that starts without the anchor left by pruning.
* **Export the head.** A database owner can rewrite rows *and* recompute every hash after
  them. The defence is a copy of each chain's head kept where the owner cannot reach: a
  JSON file signed with an Ed25519 key the database never holds, in a directory meant to
  be write-once storage. Verification checks the chain still passes through every head
  exported.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy import text
from sqlalchemy.orm import Session

from are_workers.config import get_settings
from are_workers.models.audit import audit_row_hash
from are_workers.services.compliance import audit_keys, pruning_records
from are_workers.services.compliance.audit_keys import (
    HeadSignatureError,
    key_id,
    public_key,
    signing_key,
)
from are_workers.services.compliance.pruning_records import PrunedRange, PruningRecord, head_dir

__all__ = [
    "HeadSignatureError",
    "PrunedRange",
    "SignedHead",
    "chain_head",
    "export_heads",
    "head_dir",
    "key_id",
    "public_key",
    "read_heads",
    "seal",
    "seal_all",
    "signing_key",
    "verify",
]

log = structlog.get_logger(__name__)

_COLUMNS = (
    "id, organization_id, seq, occurred_at, actor_type::text AS actor_type, actor_id, action, "
    "entity_type, entity_id, subject_ref, model_name, model_version, input_refs, output_refs, "
    "request_id, task_run_id, prev_hash, row_hash"
)


def _seal_lock(session: Session, organization_id: uuid.UUID) -> None:
    session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('are.audit_seal:' || :o, 0))"),
        {"o": str(organization_id)},
    )


def row_hash_of(row: Any, *, seq: int, prev_hash: str | None) -> str:
    """``audit_row_hash`` over a plain SQL row (the canonical form lives on the model)."""
    return audit_row_hash(row, seq=seq, prev_hash=prev_hash)


# --- sealing -----------------------------------------------------------------------------------


def pruned_ranges(session: Session, organization_id: uuid.UUID) -> list[PrunedRange]:
    """The anchors in the table, left by ``are_audit_drop_partition``.

    The sealer continues from them; verification trusts only their signed copies
    (``pruning_records``): the database owner can write such a row too.
    """
    rows = session.execute(
        text(
            "SELECT (r->>'lo')::bigint AS lo, (r->>'hi')::bigint AS hi, r->>'hash' AS hash "
            "FROM audit_log a, jsonb_array_elements(a.output_refs->'ranges') AS r "
            "WHERE a.organization_id = :o AND a.entity_type = 'audit_log' "
            "AND a.action = 'audit.pruned' ORDER BY lo"
        ),
        {"o": organization_id},
    ).all()
    return [PrunedRange(int(r.lo), int(r.hi), str(r.hash)) for r in rows]


def chain_head(session: Session, organization_id: uuid.UUID) -> tuple[int, str | None]:
    """Where the next sealed row continues: the last sealed row, or the last pruned one.

    A partition drop may remove an organization's head (no audited action for a year); the
    drop's anchor then carries the head's seq and hash, so the chain goes on unbroken.
    """
    row = session.execute(
        text(
            "SELECT seq, row_hash FROM audit_log WHERE organization_id = :o "
            "AND seq IS NOT NULL ORDER BY seq DESC LIMIT 1"
        ),
        {"o": organization_id},
    ).one_or_none()
    seq, digest = (int(row.seq), row.row_hash) if row else (0, None)
    for pruned in pruned_ranges(session, organization_id):
        if pruned.hi > seq:
            seq, digest = pruned.hi, pruned.hash
    return seq, digest


def organizations_with_unsealed(session: Session) -> list[uuid.UUID]:
    return list(
        session.execute(
            text("SELECT DISTINCT organization_id FROM audit_log WHERE seq IS NULL")
        ).scalars()
    )


def seal(
    session: Session,
    organization_id: uuid.UUID,
    *,
    batch_size: int | None = None,
) -> int:
    """Chain one organization's unsealed rows; commits per batch. Returns rows sealed."""
    batch_size = batch_size or get_settings().audit_seal_batch_size
    total = 0
    while True:
        _seal_lock(session, organization_id)
        seq, prev = chain_head(session, organization_id)
        rows = session.execute(
            text(
                f"SELECT {_COLUMNS} FROM audit_log WHERE organization_id = :o AND seq IS NULL "  # noqa: S608 - fixed column list
                "ORDER BY occurred_at, id LIMIT :n"
            ),
            {"o": organization_id, "n": batch_size},
        ).all()
        if not rows:
            session.commit()
            return total
        ids, seqs, prevs, hashes = [], [], [], []
        for row in rows:
            seq += 1
            digest = row_hash_of(row, seq=seq, prev_hash=prev)
            ids.append(str(row.id))
            seqs.append(seq)
            prevs.append(prev)
            hashes.append(digest)
            prev = digest
        session.execute(
            text(
                """
                UPDATE audit_log AS a SET seq = v.seq, prev_hash = v.prev, row_hash = v.hash
                FROM unnest(CAST(:ids AS uuid[]), CAST(:seqs AS bigint[]),
                            CAST(:prevs AS text[]), CAST(:hashes AS text[]))
                     AS v(id, seq, prev, hash)
                WHERE a.id = v.id AND a.seq IS NULL
                """
            ),
            {"ids": ids, "seqs": seqs, "prevs": prevs, "hashes": hashes},
        )
        session.commit()
        total += len(rows)
        if len(rows) < batch_size:
            return total


def seal_all(session: Session, *, batch_size: int | None = None) -> dict[str, int]:
    return {
        str(org): seal(session, org, batch_size=batch_size)
        for org in organizations_with_unsealed(session)
    }


# --- verification --------------------------------------------------------------------------------


@dataclass
class ChainReport:
    organization_id: uuid.UUID
    rows_checked: int = 0
    unsealed: int = 0
    head_seq: int | None = None
    head_hash: str | None = None
    anchored_at: int | None = None  # the chain starts after a pruned prefix ending here
    first_broken: dict[str, Any] | None = None
    exported_heads_checked: int = 0
    pruning_records_trusted: int = 0
    legacy_pruning_records: int = 0  # signed after the fact by ``sign-pruning-records``
    trusted_key_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.first_broken is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "organization_id": str(self.organization_id),
            "ok": self.ok,
            "rows_checked": self.rows_checked,
            "unsealed": self.unsealed,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "anchored_at": self.anchored_at,
            "first_broken": self.first_broken,
            "exported_heads_checked": self.exported_heads_checked,
            "pruning_records_trusted": self.pruning_records_trusted,
            "legacy_pruning_records": self.legacy_pruning_records,
            "trusted_key_id": self.trusted_key_id,
        }


def _broken(report: ChainReport, row: Any, reason: str, seq: int | None = None) -> ChainReport:
    report.first_broken = {
        "seq": seq if seq is not None else row.seq,
        "id": str(row.id) if row is not None else None,
        "action": row.action if row is not None else None,
        "reason": reason,
    }
    log.error(
        "audit_chain_broken", organization_id=str(report.organization_id), **report.first_broken
    )
    return report


def _missing(
    session: Session,
    organization_id: uuid.UUID,
    accepted: pruning_records.Accepted,
    lo: int,
    hi: int,
) -> str:
    """Why rows ``lo..hi`` are missing, naming the refused or unsigned record if there is one."""
    refused = accepted.refusal_for(lo)
    if refused is not None:
        return f"rows {lo}..{hi} are missing: {refused}"
    if any(r.lo <= lo <= r.hi for r in pruned_ranges(session, organization_id)):
        return (
            f"rows {lo}..{hi} are missing: the table holds a pruning record for them, but "
            "none signed with the head-signing key was exported outside the database "
            "(forged; or a drop from before signing: run `are-workers compliance "
            "sign-pruning-records`)"
        )
    return f"rows {lo}..{hi} are missing"


def verify(
    session: Session,
    organization_id: uuid.UUID,
    *,
    chunk: int = 10_000,
    heads: list[SignedHead] | None = None,
    pruning: list[PruningRecord] | None = None,
    public_key: Ed25519PublicKey | None = None,
) -> ChainReport:
    """Recompute the chain; stop at the first broken link and name it.

    A gap in ``seq`` is a broken link unless a pruning record *signed outside the database*
    (``pruning``; read from the head directory when not given) accounts for exactly those
    rows, for a month old enough to drop: then the next row must point at its hash. The
    chain may start after a pruned prefix; every pruned range must be followed by a sealed
    row (the drop's own anchor is sealed after it), so a record cannot invent rows that
    were never sealed.
    """
    public_key = public_key or audit_keys.public_key()
    report = ChainReport(organization_id, trusted_key_id=key_id(public_key))
    if pruning is None:
        pruning = pruning_records.read_records(organization_id, public_key=public_key)
    accepted = pruning_records.accept(session, organization_id, pruning)
    report.legacy_pruning_records = accepted.legacy
    report.pruning_records_trusted = accepted.trusted
    report.unsealed = int(
        session.execute(
            text("SELECT count(*) FROM audit_log WHERE organization_id = :o AND seq IS NULL"),
            {"o": organization_id},
        ).scalar_one()
    )
    if accepted.conflict is not None:
        return _broken(report, None, accepted.conflict, seq=0)
    duplicated = session.execute(  # seq is no unique key on the partitioned table
        text(
            "SELECT seq FROM audit_log WHERE organization_id = :o AND seq IS NOT NULL "
            "GROUP BY seq HAVING count(*) > 1 ORDER BY seq LIMIT 1"
        ),
        {"o": organization_id},
    ).scalar_one_or_none()
    ranges = accepted.ranges
    by_lo = {r.lo: r for r in ranges}
    by_hi = {r.hi: r for r in ranges}
    expected_seq: int | None = None
    prev: str | None = None
    hashes_at: dict[int, str] = {}
    wanted = {h.seq for h in heads or []}
    after: tuple[int, str] = (0, str(uuid.UUID(int=0)))
    while True:
        rows = session.execute(
            text(
                f"SELECT {_COLUMNS} FROM audit_log WHERE organization_id = :o "  # noqa: S608 - fixed column list
                "AND (seq, id) > (:seq, CAST(:id AS uuid)) ORDER BY seq, id LIMIT :n"
            ),
            {"o": organization_id, "seq": after[0], "id": after[1], "n": chunk},
        ).all()
        for row in rows:
            if expected_seq is None:
                if row.seq != 1:
                    start = row.seq - 1
                    while start > 0 and start in by_hi:  # a pruned prefix, back to seq 1
                        start = by_hi[start].lo - 1
                    if start > 0:
                        return _broken(
                            report,
                            row,
                            f"the chain starts at seq {row.seq}: "
                            + _missing(session, organization_id, accepted, 1, row.seq - 1),
                            seq=start,
                        )
                    prev = by_hi[row.seq - 1].hash
                    report.anchored_at = row.seq - 1
                expected_seq = row.seq
            if row.seq == duplicated or row.seq < expected_seq:
                return _broken(report, row, f"seq {row.seq} appears more than once")
            while row.seq > expected_seq and expected_seq in by_lo:
                pruned = by_lo[expected_seq]  # rows a partition drop removed: re-anchor
                prev, expected_seq = pruned.hash, pruned.hi + 1
            if row.seq != expected_seq:
                return _broken(
                    report,
                    row,
                    _missing(session, organization_id, accepted, expected_seq, row.seq - 1),
                    seq=expected_seq,
                )
            if row.prev_hash != prev:
                return _broken(
                    report,
                    row,
                    "prev_hash does not match the previous row's hash "
                    "(a row before it was removed or rewritten, or a pruning record "
                    "carries a wrong hash)",
                )
            digest = row_hash_of(row, seq=row.seq, prev_hash=row.prev_hash)
            if digest != row.row_hash:
                return _broken(
                    report,
                    row,
                    "the row's content changed after it was sealed (its hash no longer matches)",
                )
            if row.seq in wanted:
                hashes_at[row.seq] = row.row_hash
            prev = row.row_hash
            expected_seq = row.seq + 1
            report.rows_checked += 1
            report.head_seq, report.head_hash = row.seq, row.row_hash
        if len(rows) < chunk:
            break
        after = (rows[-1].seq, str(rows[-1].id))
    following = [r for r in ranges if expected_seq is None or r.hi >= expected_seq]
    if following:  # a pruned range no sealed row follows
        pruned = following[0]
        return _broken(
            report,
            None,
            f"the pruning record for seq {pruned.lo}..{pruned.hi} is followed by no sealed "
            "row: it claims rows that were never sealed (a real drop's anchor is sealed "
            "after it)",
            seq=pruned.lo,
        )
    _check_exported_heads(report, heads or [], hashes_at, ranges)
    return report


def _check_exported_heads(
    report: ChainReport,
    heads: list[SignedHead],
    hashes_at: dict[int, str],
    ranges: list[PrunedRange],
) -> None:
    """The chain must still pass through every head exported outside the database."""
    for head in sorted(heads, key=lambda h: h.seq):
        report.exported_heads_checked += 1
        found = hashes_at.get(head.seq)
        pruned = next((r for r in ranges if r.lo <= head.seq <= r.hi), None)
        if found is None and pruned is not None:
            if pruned.hi != head.seq or pruned.hash == head.row_hash:
                continue  # pruned since it was exported; the anchor covers it
            found = pruned.hash
        elif found is None and (report.anchored_at or 0) >= head.seq:
            continue
        if found != head.row_hash:
            reason = (
                f"the chain no longer passes through the head exported at {head.exported_at} "
                f"(seq {head.seq}): it was rewritten or truncated"
            )
            report.first_broken = {"seq": head.seq, "id": None, "action": None, "reason": reason}
            log.error(
                "audit_chain_broken", organization_id=str(report.organization_id), reason=reason
            )
            return


# --- signed head exports ----------------------------------------------------------------------


@dataclass(frozen=True)
class SignedHead:
    organization_id: uuid.UUID
    seq: int
    row_hash: str
    exported_at: str
    key_id: str
    path: Path | None = field(default=None, compare=False)


def _payload(organization_id: uuid.UUID, seq: int, row_hash: str, exported_at: str) -> bytes:
    body = {
        "organization_id": str(organization_id),
        "seq": seq,
        "row_hash": row_hash,
        "exported_at": exported_at,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def export_heads(
    session: Session,
    *,
    organization_id: uuid.UUID | None = None,
    directory: Path | None = None,
    key: Ed25519PrivateKey | None = None,
) -> list[SignedHead]:
    """Write each organization's current head, signed, as a new file (never overwritten)."""
    key = key or signing_key()
    directory = directory or head_dir()
    rows = session.execute(
        text(
            "SELECT DISTINCT ON (organization_id) organization_id, seq, row_hash "
            "FROM audit_log WHERE seq IS NOT NULL "
            "AND (CAST(:o AS uuid) IS NULL OR organization_id = CAST(:o AS uuid)) "
            "ORDER BY organization_id, seq DESC"
        ),
        {"o": str(organization_id) if organization_id else None},
    ).all()
    kid = key_id(key.public_key())
    out = []
    for row in rows:
        exported_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        payload = _payload(row.organization_id, row.seq, row.row_hash, exported_at)
        document = {
            **json.loads(payload),
            "key_id": kid,
            "signature": base64.b64encode(key.sign(payload)).decode(),
        }
        folder = directory / str(row.organization_id)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{row.seq:012d}-{exported_at.replace(':', '')}.json"
        try:
            with path.open("x", encoding="utf-8") as handle:  # never overwrite
                json.dump(document, handle, sort_keys=True, indent=2)
        except FileExistsError:
            continue
        out.append(SignedHead(row.organization_id, row.seq, row.row_hash, exported_at, kid, path))
    return out


def read_heads(
    organization_id: uuid.UUID,
    *,
    directory: Path | None = None,
    public_key: Ed25519PublicKey | None = None,
) -> list[SignedHead]:
    """Every exported head of one organization, each signature checked."""
    public_key = public_key or audit_keys.public_key()
    folder = (directory or head_dir()) / str(organization_id)
    heads = []
    for path in sorted(folder.glob("*.json")) if folder.exists() else []:
        document = json.loads(path.read_text(encoding="utf-8"))
        payload = _payload(
            uuid.UUID(document["organization_id"]),
            int(document["seq"]),
            document["row_hash"],
            document["exported_at"],
        )
        try:
            public_key.verify(base64.b64decode(document["signature"]), payload)
        except (InvalidSignature, ValueError):
            raise HeadSignatureError(
                f"The exported audit head {path} does not verify: it was altered or signed "
                "with another key."
            ) from None
        heads.append(
            SignedHead(
                uuid.UUID(document["organization_id"]),
                int(document["seq"]),
                document["row_hash"],
                document["exported_at"],
                document["key_id"],
                path,
            )
        )
    return heads
