"""Old names of the compliance settings, which now live in the one ``Settings``.

The fields (same ``ARE_*`` variables, same defaults) moved to ``are_workers.config``; these
aliases keep the compliance modules importable while they move over.
"""

from __future__ import annotations

from are_workers.config import Settings as ComplianceSettings
from are_workers.config import get_settings as compliance_settings

__all__ = ["ComplianceSettings", "compliance_settings"]
