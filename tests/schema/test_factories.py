"""The factories build one consistent tenant, reusable by the pipeline tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from tests.factories import Graph, make_graph


def test_graph_is_consistent(db: Session, graph: Graph) -> None:
    org_id = graph.org.id
    rows: list[Any] = [graph.member, graph.job, graph.candidate, graph.resume_file]
    rows.append(graph.parsed_resume)
    assert all(row.organization_id == org_id for row in [*rows, graph.application])
    assert graph.application.candidate_id == graph.candidate.id
    assert graph.application.job_id == graph.job.id
    assert graph.application.current_stage_id == graph.job.pipeline_stages[0].id
    assert [r.position for r in graph.requirements] == [0, 1]
    assert graph.resume_file.candidate_id == graph.candidate.id
    assert graph.parsed_resume.sections[0]["name"] == "experience"
    assert graph.candidate.applications == [graph.application]


def test_two_graphs_do_not_collide(db: Session) -> None:
    first, second = make_graph(db), make_graph(db)
    assert first.org.id != second.org.id
    shared = make_graph(db, first.org)
    assert shared.org.id == first.org.id
