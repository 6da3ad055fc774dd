"""ARE Workers: the background-processing half of the Applicant Recruitment Engine.

Importing this package (or ``are_workers.client``) stays light on purpose: upstream apps
enqueue jobs with it and must not pay for torch, transformers, CTranslate2 or OpenCV.
"""

__version__ = "0.1.0"
