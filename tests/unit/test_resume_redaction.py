"""Contact details are masked out of resume text, same length; work history is not."""

from __future__ import annotations

import pytest

from are_workers.services.resumes.parsing import parse_resume
from are_workers.services.resumes.redaction import MASK, redact_contact_details


def _masked(text: str) -> list[str]:
    """The masked runs of ``text`` (as they were before masking)."""
    redacted = redact_contact_details(text)
    assert len(redacted.text) == len(text)
    return [text[r.start : r.end] for r in redacted.redactions]


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        # emails
        ("Contact: jane.doe+cv@example.co.uk", "jane.doe+cv@example.co.uk"),
        ("mail: J.Doe@Example.COM.", "J.Doe@Example.COM"),
        ("jane (at) example (dot) com", "jane (at) example (dot) com"),
        ("jane[at]example.org", "jane[at]example.org"),
        # phones, international and national formats
        ("+44 (0)20 7946 0958", "+44 (0)20 7946 0958"),
        ("+1-202-555-0143", "+1-202-555-0143"),
        ("(555) 123-4567", "(555) 123-4567"),
        ("call 555-123-4567 today", "555-123-4567"),
        ("555.123.4567", "555.123.4567"),
        ("+49 30 1234567", "+49 30 1234567"),
        ("Tel.: 030 / 123 456 78", "030 / 123 456 78"),
        ("Mobil 0176 12345678", "0176 12345678"),
        ("0049 89 123456", "0049 89 123456"),
        ("+33 1 23 45 67 89", "+33 1 23 45 67 89"),
        ("Téléphone : 01 23 45 67 89", "01 23 45 67 89"),
        ("portable 06.12.34.56.78", "06.12.34.56.78"),
        ("+41 44 668 18 00", "+41 44 668 18 00"),
        ("Phone: 5551234567", "5551234567"),
        # links
        ("linkedin.com/in/jane-doe-42", "linkedin.com/in/jane-doe-42"),
        ("https://www.linkedin.com/in/janedoe/", "https://www.linkedin.com/in/janedoe/"),
        ("github.com/jdoe", "github.com/jdoe"),
        ("see https://janedoe.dev/blog.", "https://janedoe.dev/blog"),
        ("www.jane-doe.de", "www.jane-doe.de"),
        ("Portfolio: janedoe.com", "janedoe.com"),
        ("xing.com/profile/Jane_Doe", "xing.com/profile/Jane_Doe"),
        # street addresses: English, German, French
        ("221B Baker Street, London NW1 6XE", "221B Baker Street, London NW1 6XE"),
        ("1600 Pennsylvania Avenue NW, Washington, DC 20500", None),
        ("42 Elm Rd., Apt 4B, Springfield", "42 Elm Rd., Apt 4B, Springfield"),
        ("Springfield, IL 62704", "Springfield, IL 62704"),
        ("Hauptstraße 12a, 10115 Berlin", "Hauptstraße 12a, 10115 Berlin"),
        ("Berliner Straße 5, 80331 München", "Berliner Straße 5, 80331 München"),
        ("Musterstr. 7", "Musterstr. 7"),
        ("Am Alten Weg 3", "Am Alten Weg 3"),
        ("12 rue de la Paix, 75002 Paris", "12 rue de la Paix, 75002 Paris"),
        ("5 bis, avenue des Champs-Élysées", "5 bis, avenue des Champs-Élysées"),
        ("3 place de la Bourse, Bordeaux", "3 place de la Bourse, Bordeaux"),
        ("Adresse : Le Moulin, hameau nord", "Le Moulin, hameau nord"),
        ("Anschrift: bei Müller, Hinterhaus", "bei Müller, Hinterhaus"),
        ("P.O. Box 1234", "P.O. Box 1234"),
        ("Postfach 10 20 30", "Postfach 10 20 30"),
        ("CH-8001 Zürich", "CH-8001 Zürich"),
        ("Berlin · 10115 Berlin", "10115 Berlin"),
    ],
)
def test_a_contact_detail_is_masked(text: str, secret: str | None) -> None:
    redacted = redact_contact_details(text)
    assert len(redacted.text) == len(text)
    if secret is None:
        secret = text
    assert any(secret in run for run in _masked(text)), _masked(text)
    assert secret not in redacted.text


@pytest.mark.parametrize(
    "text",
    [
        "2019 - 2023 Senior Engineer",
        "Jan 2019 \u2013 Mar 2021",
        "01/2019 - 03/2021",
        "03.2018 \u2013 12.2020",
        "2015 2016 2017 2018",
        "Released on 2023-01-15 and 15.01.2023, 01/15/23",
        "Python 3.11.4, Kubernetes 1.28, PostgreSQL 16.2, Java 17",
        "version 10.15.7 of macOS",
        "ASP.NET, Node.js, Socket.io, Vue.js, D3.js, .NET 8",
        "Served 3 500 000 users and 1 000 000 requests a day",
        "reduced latency by 45% across 12 services; saved $250,000",
        "Software Engineering 5 years",
        "In 2019 I joined Acme as Lead (team of 12 people).",
        "Internal network 10.0.0.12, port 8080",
        "ISO 27001, SOC 2 Type II, ISO 9001:2015",
        "Completed 3 courses on Coursera",
        "Office at 3 places in Europe",
        "B.Sc. Computer Science, M.Sc., Ph.D., e.g. and i.e.",
        "Deutsch (Muttersprache), Français (courant)",
        "Gehalt 65.000 EUR, 40 Std./Woche",
        "Revenue grew from 1200000 to 2500000; hotel 1234567 nights",
    ],
)
def test_work_history_is_not_masked(text: str) -> None:
    assert _masked(text) == []


def test_the_mask_keeps_offsets_and_lines_and_the_parse_still_works() -> None:
    resume = (
        "Jane Doe\n"
        "jane.doe@example.com | +49 30 1234567 | Hauptstraße 12, 10115 Berlin\n"
        "linkedin.com/in/janedoe\n"
        "\n"
        "EXPERIENCE\n"
        "Senior Backend Engineer, Acme GmbH, 01/2019 - 03/2023\n"
        "Built Python and PostgreSQL services on Kubernetes.\n"
        "\n"
        "SKILLS\n"
        "Python, PostgreSQL, Kubernetes\n"
    )
    redacted = redact_contact_details(resume)
    assert len(redacted.text) == len(resume)
    assert redacted.text.count("\n") == resume.count("\n")
    assert redacted.counts == {"address": 1, "email": 1, "phone": 1, "url": 1}
    for span in redacted.redactions:  # every masked span is masked completely
        assert set(redacted.text[span.start : span.end]) == {MASK}
    original, masked = parse_resume(resume), parse_resume(redacted.text)
    assert [(s.name, s.start, s.end) for s in masked.sections] == [
        (s.name, s.start, s.end) for s in original.sections
    ]
    assert masked.skill_names == original.skill_names
    assert masked.experience_months == original.experience_months
    assert masked.contact.email is None and masked.contact.phone is None
    assert masked.contact.links == ()
    # The work history reads as before, character for character.
    start = resume.index("EXPERIENCE")
    assert redacted.text[start:] == resume[start:]
