"""The database-free resume pipeline: extraction -> parsing -> chunking (-> embedding).

Each step is a plain function over plain data, so actors stay thin wrappers and every step
can be tested without a database or a broker::

    extracted = extract_text(data, limits=ExtractionLimits.from_settings(settings))
    parsed = parse_resume(extracted.text, language=extracted.language)
    chunks = chunk_resume(parsed, count_tokens=embedder.count_tokens)
    vectors = embedder.embed([chunk.text for chunk in chunks])
"""

from are_workers.services.documents import (
    DocumentType,
    ErrorCode,
    ExtractedText,
    ExtractionLimits,
    detect_document_type,
    detect_language,
    extract_file,
    extract_text,
)
from are_workers.services.resumes.chunking import Chunk, chunk_resume, chunk_sections
from are_workers.services.resumes.parsing import (
    ContactInfo,
    EducationEntry,
    EmploymentPeriod,
    ParsedResume,
    Section,
    parse_resume,
)
from are_workers.services.skills import SkillMatch, SkillTaxonomy, get_taxonomy

__all__ = [
    "Chunk",
    "ContactInfo",
    "DocumentType",
    "EducationEntry",
    "EmploymentPeriod",
    "ErrorCode",
    "ExtractedText",
    "ExtractionLimits",
    "ParsedResume",
    "Section",
    "SkillMatch",
    "SkillTaxonomy",
    "chunk_resume",
    "chunk_sections",
    "detect_document_type",
    "detect_language",
    "extract_file",
    "extract_text",
    "get_taxonomy",
    "parse_resume",
]
