"""Matching candidates to jobs.

- ``retrieval``: tenant-safe top-K retrieval of candidates (or chunks) by vector similarity,
  exact for small tenants and through a per-tenant partial HNSW index for large ones.
- ``postings`` and ``evaluation``: a job from its posting, and the explained evaluation of the
  candidates retrieval shortlists.
"""
