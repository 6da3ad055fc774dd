"""Fixtures for the assessment tests: one tenant with a bank, an adaptive test and norms."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from are_workers.models.assessments import Assessment, NormGroup
from are_workers.models.organizations import Organization
from tests.assessments.factories import Bank, make_assessment, make_bank, make_norm_group
from tests.factories import make_org


@dataclass
class Tenant:
    org: Organization
    bank: Bank
    assessment: Assessment
    norms: NormGroup


@pytest.fixture
def tenant(db: Session) -> Tenant:
    org = make_org(db)
    bank = make_bank(db, org)
    assessment = make_assessment(db, org, bank)
    return Tenant(org, bank, assessment, make_norm_group(db, org, assessment))
