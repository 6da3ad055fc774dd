"""The ML layer: the only place that imports torch, transformers, CTranslate2 and OpenCV.

Every heavy import happens inside a function, so ``import are_workers.client`` (what an
upstream app does) and ``import are_workers.tasks`` stay light. Models load once per worker
process, after the fork, on first use or at warm-up.
"""
