"""The public summary of a bias audit (NYC LL 144, 6 RCNY 5-303) as JSON, Markdown and HTML.

Why a separate step from the audit: the stored reports hold every decision and dimension
(human decisions, disability, age band) for the organisation's own monitoring; the rules ask
an employer to *publish* less: per audited tool, the date of the audit, the source and an
explanation of the data, the number of individuals assessed and of those in the unknown
category, and for sex, race/ethnicity and their intersection the selection or scoring rates
and impact ratios, plus the tool's distribution date. This module picks exactly those fields
from :func:`bias.latest_reports` rows and renders them; the bar chart comes from
:mod:`are_workers.charts`, which the operators' dashboard reuses.
"""

from __future__ import annotations

from datetime import date
from html import escape
from typing import Any

from are_workers.charts import Bar, horizontal_bar_chart_svg
from are_workers.services.compliance.bias import FOUR_FIFTHS, UNKNOWN

#: Stored dimension -> the category the rules name.
PUBLISHED_DIMENSIONS = {
    "gender": "sex",
    "ethnicity": "race/ethnicity",
    "gender_x_ethnicity": "sex x race/ethnicity",
}

#: Audited outputs that are the tool's (human decisions are not published as the tool's).
_TOOL_OUTPUTS = {
    "ai_recommendation": (
        "selection_rate",
        "AI evaluations of applications in the period (the latest completed one per "
        "application); 'selected' means the overall score reached the shortlist threshold.",
    ),
    "ai_score": (
        "scoring_rate",
        "Overall scores (0 to 100) of the same AI evaluations; the scoring rate is the share of "
        "a category scoring above the median score of everyone evaluated.",
    ),
    "assessment_score": (
        "scoring_rate",
        "Final ability scores of completed adaptive assessment sessions in the period (the "
        "latest per candidate); the scoring rate is the share of a category scoring above the "
        "median score of everyone assessed.",
    ),
}

_CATEGORIES_NOTE = (
    "Categories come from candidates' voluntary self-identification; people who did not "
    "answer are counted as unknown and left out of the rates. Categories with fewer people "
    "than the minimum group size are listed with their count but no rate."
)


def public_summary(
    reports: list[dict[str, Any]], *, distribution_date: date | None = None
) -> dict[str, Any]:
    """The publishable fields of the latest audit's reports (rows of ``latest_reports``)."""
    tools: dict[tuple[str, str | None, str | None], dict[str, Any]] = {}
    audit_dates = []
    for report in reports:
        metrics = report["metrics"]
        source = report["decision"]
        dimension = PUBLISHED_DIMENSIONS.get(metrics["dimension"])
        if source not in _TOOL_OUTPUTS or dimension is None:
            continue
        audit_dates.append(str(report["created_at"]))
        key = (source, report.get("model_version_id"), metrics.get("source_id"))
        method, explanation = _TOOL_OUTPUTS[source]
        tool = tools.setdefault(
            key,
            {
                "output": source,
                "tool": _tool_name(report, metrics),
                "method": method,
                "data_source": explanation,
                "period_start": str(report["period_start"]),
                "period_end": str(report["period_end"]),
                "individuals_assessed": report["sample_size"],
                "median_score": metrics.get("median_score"),
                "min_group_size": report["min_group_size"],
                "categories": [],
            },
        )
        rate_key = "scoring_rate" if method == "scoring_rate" else "selection_rate"
        groups = metrics["groups"]
        tool["categories"].append(
            {
                "dimension": dimension,
                "unknown_count": sum(g["count"] for g in groups if g["group"] == UNKNOWN),
                "groups": [
                    {
                        "category": g["group"],
                        "count": g["count"],
                        "rate": g.get(rate_key),
                        "impact_ratio": g.get("impact_ratio"),
                        "too_small": bool(g.get("suppressed")),
                    }
                    for g in groups
                    if g["group"] != UNKNOWN
                ],
            }
        )
    for tool in tools.values():
        order = list(PUBLISHED_DIMENSIONS.values())
        tool["categories"].sort(key=lambda c: order.index(c["dimension"]))
    return {
        "version": 1,
        "law": "New York City Local Law 144 of 2021 (6 RCNY 5-300 to 5-304)",
        "audit_date": max(audit_dates)[:10] if audit_dates else None,
        "distribution_date": distribution_date.isoformat() if distribution_date else None,
        "four_fifths_threshold": FOUR_FIFTHS,
        "categories_note": _CATEGORIES_NOTE,
        "tools": list(tools.values()),
    }


def _tool_name(report: dict[str, Any], metrics: dict[str, Any]) -> str:
    if report.get("model_name"):
        return f"{report['model_name']} {report.get('model_version') or ''}".strip()
    if metrics.get("source_id"):
        return f"assessment {metrics['source_id']}"
    return "AI evaluation"


def impact_ratio_chart(tool: dict[str, Any], category: dict[str, Any]) -> str:
    """The SVG bar chart of one tool's impact ratios in one dimension."""
    bars = [
        Bar(
            label=group["category"],
            value=group["impact_ratio"],
            note=f"too small (n={group['count']})" if group["too_small"] else None,
            highlight=group["impact_ratio"] is not None and group["impact_ratio"] < FOUR_FIFTHS,
        )
        for group in category["groups"]
    ]
    return horizontal_bar_chart_svg(
        bars,
        title=f"Impact ratio by {category['dimension']}: {tool['tool']} ({_rate_name(tool)})",
        reference=FOUR_FIFTHS,
        reference_label="0.8",
    )


def _rate_name(tool: dict[str, Any]) -> str:
    return "scoring rate" if tool["method"] == "scoring_rate" else "selection rate"


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def render_markdown(summary: dict[str, Any]) -> str:
    """A readable page (GitHub-flavoured Markdown with the SVG charts inline)."""
    lines = [
        "# Bias audit summary",
        "",
        f"- Law: {summary['law']}",
        f"- Date of the bias audit: {summary['audit_date'] or 'no audit yet'}",
        f"- Distribution date of the tool: {summary['distribution_date'] or 'not stated'}",
        f"- {summary['categories_note']}",
        "",
    ]
    for tool in summary["tools"]:
        rate = _rate_name(tool)
        lines += [
            f"## {tool['tool']}: {rate}",
            "",
            f"- Data: {tool['data_source']}",
            f"- Period: {tool['period_start'][:10]} to {tool['period_end'][:10]}",
            f"- Individuals assessed: {tool['individuals_assessed']}",
            f"- Smallest category given a rate: {tool['min_group_size']} individuals",
        ]
        if tool["median_score"] is not None:
            lines.append(f"- Median score of the sample: {_fmt(tool['median_score'])}")
        lines.append("")
        for category in tool["categories"]:
            lines += [
                f"### By {category['dimension']} (unknown: {category['unknown_count']})",
                "",
                f"| category | individuals | {rate} | impact ratio |",
                "|---|---:|---:|---:|",
            ]
            for group in category["groups"]:
                ratio = "too small" if group["too_small"] else _fmt(group["impact_ratio"])
                lines.append(
                    f"| {_md_cell(group['category'])} | {group['count']} | "
                    f"{_fmt(group['rate'])} | {ratio} |"
                )
            lines += ["", impact_ratio_chart(tool, category), ""]
    return "\n".join(lines)


def _md_cell(value: str) -> str:
    return escape(value).replace("|", "\\|")


def render_html(summary: dict[str, Any]) -> str:
    """A self-contained HTML page (no scripts, no external assets) to post publicly."""
    body = [
        "<h1>Bias audit summary</h1>",
        "<ul>",
        f"<li>Law: {escape(summary['law'])}</li>",
        f"<li>Date of the bias audit: {escape(summary['audit_date'] or 'no audit yet')}</li>",
        "<li>Distribution date of the tool: "
        f"{escape(summary['distribution_date'] or 'not stated')}</li>",
        f"<li>{escape(summary['categories_note'])}</li>",
        "</ul>",
    ]
    for tool in summary["tools"]:
        rate = _rate_name(tool)
        body += [
            f"<section><h2>{escape(tool['tool'])}: {rate}</h2><ul>",
            f"<li>Data: {escape(tool['data_source'])}</li>",
            f"<li>Period: {escape(tool['period_start'][:10])} to "
            f"{escape(tool['period_end'][:10])}</li>",
            f"<li>Individuals assessed: {tool['individuals_assessed']}</li>",
            f"<li>Smallest category given a rate: {tool['min_group_size']} individuals</li>",
        ]
        if tool["median_score"] is not None:
            body.append(f"<li>Median score of the sample: {_fmt(tool['median_score'])}</li>")
        body.append("</ul>")
        for category in tool["categories"]:
            rows = "".join(
                f"<tr><td>{escape(g['category'])}</td><td>{g['count']}</td>"
                f"<td>{_fmt(g['rate'])}</td>"
                f"<td>{'too small' if g['too_small'] else _fmt(g['impact_ratio'])}</td></tr>"
                for g in category["groups"]
            )
            body += [
                f"<h3>By {escape(category['dimension'])} "
                f"(unknown: {category['unknown_count']})</h3>",
                f"<table><thead><tr><th>category</th><th>individuals</th><th>{rate}</th>"
                f"<th>impact ratio</th></tr></thead><tbody>{rows}</tbody></table>",
                impact_ratio_chart(tool, category),
            ]
        body.append("</section>")
    style = (
        "body{font-family:system-ui,sans-serif;max-width:760px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
        "padding:.2em .6em;text-align:right}td:first-child,th:first-child{text-align:left}"
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Bias audit summary</title><style>{style}</style></head><body>"
        + "".join(body)
        + "</body></html>"
    )
