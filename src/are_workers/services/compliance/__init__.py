"""Compliance services: the GDPR Art. 30 data map (more to come: retention, erasure, export).

All of it is driven by the schema's classifications (``models/classification.py``) through
the compliance registry (``registry.py``).
"""

from are_workers.services.compliance.data_map import build_data_map, render_data_map_json

__all__ = ["build_data_map", "render_data_map_json"]
