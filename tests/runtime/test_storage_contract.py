"""The storage key contract over existing rows: the report ops run before and after deploys."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy.orm import Session

from are_workers.services import storage
from tests.conftest import UploadFn
from tests.factories import make_org

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "resumes" / "tom_baker_accountant.txt"


def test_the_report_names_each_row_whose_key_breaks_the_contract(
    db: Session, upload: UploadFn
) -> None:
    org, other = make_org(db), make_org(db)
    good = upload(org, SAMPLE)
    borrowed = upload(org, SAMPLE)
    borrowed.storage_key = f"{other.id}/{uuid.uuid4()}"
    flat = upload(org, SAMPLE)
    flat.storage_key = f"uploads/{uuid.uuid4()}.pdf"
    db.flush()
    found = {
        p.row_id: p for p in storage.misfit_keys(db, batch=2) if p.organization_id == str(org.id)
    }
    assert set(found) == {str(borrowed.id), str(flat.id)}
    assert found[str(borrowed.id)].problem == "does not begin with its organization's id"
    assert found[str(flat.id)].table == "files"
    assert str(good.id) not in found
