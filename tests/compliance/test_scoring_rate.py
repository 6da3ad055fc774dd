"""LL 144 scoring rates: a synthetic population with a known disparity, an intersectional
group below the small-group threshold, and the public summary (JSON, Markdown, HTML, chart)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from are_workers.charts import Bar, horizontal_bar_chart_svg
from are_workers.models.schemas import BiasAuditMetrics
from are_workers.services.compliance.bias import DIMENSIONS, flags, scoring_rate_metrics
from are_workers.services.compliance.bias_summary import (
    public_summary,
    render_html,
    render_markdown,
)


def _population() -> list[tuple[dict[str, str], float]]:
    """60 men and 60 women (white or black), 3 asian women, 7 who did not answer.

    Men score 60..119, women 30..89: 45 of 60 men and 15 of 60 women score above the
    sample median, so the women's impact ratio is 1/3 (known in advance)."""
    people: list[tuple[dict[str, str], float]] = []
    for i in range(60):
        ethnicity = "white" if i % 2 else "black"
        people.append(({"gender": "male", "ethnicity": ethnicity}, 60.0 + i))
        people.append(({"gender": "female", "ethnicity": ethnicity}, 30.0 + i))
    people += [({"gender": "female", "ethnicity": "asian"}, 75.0)] * 3
    people += [({}, 74.5)] * 7
    return people


def _metrics(dimension: str) -> tuple[float | None, dict[str, dict]]:
    categorize = DIMENSIONS[dimension]
    median, groups = scoring_rate_metrics(
        [(categorize(a), score) for a, score in _population()], min_group_size=5
    )
    return median, {g["group"]: g for g in groups}


def test_scoring_rates_find_the_known_disparity() -> None:
    median, groups = _metrics("gender")
    assert median == 74.5
    assert groups["male"]["scoring_rate"] == pytest.approx(45 / 60, abs=1e-4)
    assert groups["female"]["scoring_rate"] == pytest.approx(18 / 63, abs=1e-4)  # 3 asian above
    assert groups["female"]["impact_ratio"] == pytest.approx((18 / 63) / (45 / 60), abs=1e-3)
    assert groups["male"]["impact_ratio"] == 1.0
    assert groups["unknown"] == {
        "group": "unknown",
        "count": 7,
        "scoring_rate": None,
        "impact_ratio": None,
        "suppressed": True,
    }
    metrics = {
        "version": 1,
        "dimension": "gender",
        "method": "scoring_rate",
        "groups": list(groups.values()),
    }
    BiasAuditMetrics.model_validate(metrics)
    assert [f["group"] for f in flags(metrics)] == ["female"]


def test_a_small_intersectional_group_is_counted_not_rated() -> None:
    _, groups = _metrics("gender_x_ethnicity")
    small = groups["female / asian"]
    assert small["count"] == 3 and small["suppressed"] and small["impact_ratio"] is None
    assert groups["female / black"]["count"] == 30
    assert groups["female / black"]["impact_ratio"] < 0.8  # the disparity shows up here too
    metrics = {"version": 1, "dimension": "gender_x_ethnicity", "groups": list(groups.values())}
    assert "female / asian" not in {f["group"] for f in flags(metrics)}


def test_an_empty_sample_has_no_median() -> None:
    assert scoring_rate_metrics([], 5) == (None, [])


def _report(dimension: str, source: str, **extra: object) -> dict:
    median, groups = _metrics(dimension)
    return {
        "decision": source,
        "model_name": "evaluator" if source != "assessment_score" else None,
        "model_version": "2026.12" if source != "assessment_score" else None,
        "model_version_id": "v1" if source != "assessment_score" else None,
        "period_start": datetime(2026, 1, 1, tzinfo=UTC).isoformat(),
        "period_end": datetime(2026, 12, 1, tzinfo=UTC).isoformat(),
        "created_at": datetime(2026, 12, 1, 5, tzinfo=UTC).isoformat(),
        "min_group_size": 5,
        "sample_size": 130,
        "metrics": {
            "version": 1,
            "dimension": dimension,
            "method": "scoring_rate",
            "source": source,
            "median_score": median,
            "groups": list(groups.values()),
            **extra,
        },
    }


def test_the_public_summary_has_the_required_fields_and_renders() -> None:
    reports = [
        _report(dimension, "ai_score")
        for dimension in ("gender", "ethnicity", "gender_x_ethnicity", "age_band")
    ] + [
        _report("gender", "assessment_score", source_id="a-1"),
        _report("gender", "human_decision"),
    ]
    summary = public_summary(reports, distribution_date=date(2026, 2, 1))
    json.dumps(summary)  # plain JSON
    assert summary["audit_date"] == "2026-12-01"
    assert summary["distribution_date"] == "2026-02-01"
    assert [t["output"] for t in summary["tools"]] == ["ai_score", "assessment_score"]
    ai = summary["tools"][0]
    assert ai["tool"] == "evaluator 2026.12" and ai["method"] == "scoring_rate"
    assert ai["individuals_assessed"] == 130 and ai["median_score"] == 74.5
    assert "median score" in ai["data_source"]
    assert [c["dimension"] for c in ai["categories"]] == [
        "sex",
        "race/ethnicity",
        "sex x race/ethnicity",
    ]  # age band is not part of the published summary
    sex = ai["categories"][0]
    assert sex["unknown_count"] == 7
    female = next(g for g in sex["groups"] if g["category"] == "female")
    assert female["rate"] == pytest.approx(18 / 63, abs=1e-4) and not female["too_small"]

    markdown = render_markdown(summary)
    assert "| female | 63 | 0.286 | 0.381 |" in markdown
    assert "too small" in markdown and "<svg" in markdown
    threshold = f"Smallest category given a rate: {ai['min_group_size']} individuals"
    assert threshold in markdown
    html = render_html(summary)
    assert threshold in html
    assert html.startswith("<!doctype html>") and "<script" not in html
    assert html.count("<svg") == 4  # three dimensions of the AI score, one of the assessment


def test_the_chart_escapes_labels_and_marks_low_ratios() -> None:
    svg = horizontal_bar_chart_svg(
        [
            Bar("a <b>", 1.0),
            Bar("c & d", 0.5, highlight=True),
            Bar("tiny", None, note="too small (n=3)"),
        ],
        title="Impact ratio",
        reference=0.8,
        reference_label="0.8",
    )
    assert "a &lt;b&gt;" in svg and "c &amp; d" in svg and "<b>" not in svg
    assert svg.count("<rect") == 2 and "#c0392b" in svg
    assert "too small (n=3)" in svg and 'role="img"' in svg
