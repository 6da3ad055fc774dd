"""Code signals on the sample archives, and on small archives built to show one rule each."""

from __future__ import annotations

import importlib.util
import io
import json
import zipfile
from pathlib import Path

import pytest

from are_workers.services.portfolios.archives import ArchiveFile, read_archive
from are_workers.services.portfolios.code_signals import (
    analyze_code,
    decode_source,
    is_ignored_path,
    language_for,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "portfolios"

requires_lizard = pytest.mark.skipif(
    importlib.util.find_spec("lizard") is None, reason="lizard (complexity) is not installed"
)


@pytest.fixture(scope="module")
def ledger():  # type: ignore[no-untyped-def]
    contents = read_archive((SAMPLES / "backend_alex_chen" / "ledger-service.zip").read_bytes())
    return analyze_code(contents.files)


def files(mapping: dict[str, bytes | str]) -> list[ArchiveFile]:
    return [
        ArchiveFile(path, data.encode() if isinstance(data, str) else data)
        for path, data in mapping.items()
    ]


def test_sample_zip_languages_tests_ci_readme_manifests(ledger) -> None:  # type: ignore[no-untyped-def]
    assert ledger.root == "ledger-service"
    assert ledger.primary_language == "Python"
    assert ledger.languages[0].share == 1.0
    assert ledger.code_lines == ledger.languages[0].lines > 100
    assert ledger.has_tests
    assert "ledger-service/tests/test_service.py" in ledger.test_files
    assert ledger.ci_systems == ("GitHub Actions",)
    assert ledger.ci_files == ("ledger-service/.github/workflows/ci.yml",)
    assert ledger.readme_path == "ledger-service/README.md"
    (manifest,) = ledger.manifests
    assert manifest.path == "ledger-service/pyproject.toml"
    assert {"fastapi", "sqlalchemy", "psycopg", "alembic", "pytest"} <= set(manifest.dependencies)


def test_sample_zip_structure(ledger) -> None:  # type: ignore[no-untyped-def]
    assert ledger.files == 18
    assert ledger.max_depth == 3  # .github/workflows/ci.yml, below the common root
    assert ".github" in ledger.top_level and "src" in ledger.top_level
    assert ledger.directories >= 6
    assert ledger.total_bytes > 5000


def test_sample_zip_skill_signals_cite_files(ledger) -> None:  # type: ignore[no-untyped-def]
    by_skill = {(s.skill, s.via): s for s in ledger.skills}
    assert by_skill[("Unit Testing", "tests")].path.startswith("ledger-service/tests/")
    assert by_skill[("pytest", "tests")].path.endswith("conftest.py")
    assert by_skill[("CI/CD", "ci")].path.endswith(".github/workflows/ci.yml")
    assert by_skill[("GitHub Actions", "ci")].strength > 0.5
    assert by_skill[("FastAPI", "dependency")].path.endswith("pyproject.toml")
    assert by_skill[("PostgreSQL", "dependency")].detail.startswith("psycopg")
    assert by_skill[("Docker", "tooling")].path.endswith(("Dockerfile", "docker-compose.yml"))
    assert by_skill[("Kubernetes", "tooling")].path.endswith("k8s/deployment.yaml")
    assert by_skill[("Python", "language")].path.endswith(".py")
    assert ledger.skill("python") is not None  # any case


@requires_lizard
def test_sample_zip_complexity_with_lizard(ledger) -> None:  # type: ignore[no-untyped-def]
    complexity = ledger.complexity
    assert complexity is not None
    assert complexity.tool.startswith("lizard ")
    assert complexity.functions >= 8
    assert complexity.max_cyclomatic >= 6  # transfer() validates five conditions
    assert complexity.most_complex[0].name == "transfer"
    assert complexity.rating == "low"


@requires_lizard
def test_stats_are_json_and_content_free(ledger) -> None:  # type: ignore[no-untyped-def]
    stats = ledger.to_stats()
    text = json.dumps(stats)
    assert "SELECT ... FOR UPDATE" not in text
    assert stats["has_tests"] is True
    assert stats["complexity"]["rating"] == "low"


def test_sample_tar_gz_go() -> None:
    contents = read_archive((SAMPLES / "backend_sam_okafor" / "ratelimit.tar.gz").read_bytes())
    signals = analyze_code(contents.files)
    assert signals.primary_language == "Go"
    assert signals.test_files == ("ratelimit/bucket_test.go",)
    assert signals.ci_systems == ("GitLab CI",)
    assert signals.manifests[0].ecosystem == "Go"
    assert "go-redis" in signals.manifests[0].dependencies
    assert signals.skill("Redis") is not None


def test_binary_posing_as_text_is_skipped_with_a_note() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    signals = analyze_code(
        files(
            {
                "src/app.py": "def main():\n    return 1\n",
                "src/evil.py": b"\x7fELF\x02\x01\x01\x00" + bytes(200),
                "notes.md": png,
                "logo.png": png,
            }
        )
    )
    assert [s.path for s in signals.skipped] == ["src/evil.py", "notes.md"]
    assert all("binary" in s.reason for s in signals.skipped)
    assert any("src/evil.py" in note for note in signals.notes)
    assert signals.languages[0].files == 1  # evil.py is not counted as Python
    assert signals.binary_files == 1  # logo.png: binary and named so, not suspicious


def test_vendored_and_generated_files_are_ignored() -> None:
    signals = analyze_code(
        files(
            {
                "app/index.js": "export const a = 1;\n",
                "app/node_modules/left-pad/index.js": "module.exports = 1;\n" * 50,
                "app/dist/bundle.min.js": "var a=1;" * 100,
                "app/static/vendor.min.js": "var b=2;",
            }
        )
    )
    assert signals.languages[0].lines == 1
    assert signals.ignored_files == 3
    assert is_ignored_path("x/.venv/lib/site.py") and not is_ignored_path("src/venv_tools.py")


def test_no_tests_no_ci_no_readme() -> None:
    signals = analyze_code(files({"main.go": "package main\n\nfunc main() {}\n"}))
    assert not signals.has_tests and not signals.has_ci and signals.readme_path is None
    assert "No automated tests found." in signals.describe()


@pytest.mark.parametrize(
    "path",
    [
        "tests/test_api.py",
        "pkg/api_test.go",
        "src/Button.test.tsx",
        "src/app.spec.ts",
        "src/test/java/com/x/ServiceTest.java",
        "spec/models/user_spec.rb",
        "__tests__/app.js",
    ],
)
def test_test_file_conventions(path: str) -> None:
    signals = analyze_code(files({path: "x = 1\n", "src/main.py": "y = 2\n"}))
    assert signals.test_files == (path,)


def test_rust_inline_tests_are_found() -> None:
    code = "fn add(a: i32) -> i32 { a + 1 }\n#[cfg(test)]\nmod tests {\n  #[test]\n  fn t() {}\n}\n"
    assert analyze_code(files({"src/lib.rs": code})).has_tests


@pytest.mark.parametrize(
    ("path", "system"),
    [
        (".gitlab-ci.yml", "GitLab CI"),
        ("Jenkinsfile", "Jenkins"),
        (".circleci/config.yml", "CircleCI"),
        (".github/workflows/release.yaml", "GitHub Actions"),
    ],
)
def test_ci_configurations(path: str, system: str) -> None:
    signals = analyze_code(files({f"proj/{path}": "x: 1\n", "proj/a.py": "a = 1\n"}))
    assert signals.ci_systems == (system,)


def test_manifests_of_other_ecosystems() -> None:
    signals = analyze_code(
        files(
            {
                "package.json": json.dumps(
                    {
                        "dependencies": {"react": "18", "express": "4"},
                        "devDependencies": {"jest": "29"},
                    }
                ),
                "Cargo.toml": '[dependencies]\nserde = "1"\ntokio = "1"\n',
                "Gemfile": "source 'https://rubygems.org'\ngem 'rails'\ngem \"pg\"\n",
                "requirements-dev.txt": "# tools\n-r requirements.txt\npytest>=8\nDjango==5.0\n",
                "pom.xml": "<dependency><groupId>o</groupId><artifactId>spring-boot-starter-web"
                "</artifactId></dependency>",
                "broken/package.json": "{not json",
            }
        )
    )
    by_path = {m.path: m for m in signals.manifests}
    assert by_path["package.json"].dependencies == ("react", "express", "jest")
    assert by_path["Cargo.toml"].dependencies == ("serde", "tokio")
    assert by_path["Gemfile"].dependencies == ("rails", "pg")
    assert by_path["requirements-dev.txt"].dependencies == ("pytest", "Django")
    assert by_path["pom.xml"].dependencies == ("spring-boot-starter-web",)
    assert by_path["broken/package.json"].dependencies == ()
    skills = {s.skill for s in signals.skills}
    assert {"React", "Express.js", "Django", "PostgreSQL", "Spring Boot", "Ruby on Rails"} <= skills


@requires_lizard
def test_complexity_counts_tangled_functions() -> None:
    branches = "".join(f"    if x == {i}:\n        return {i}\n" for i in range(15))
    code = f"def tangled(x):\n{branches}    return -1\n\n\ndef simple(y):\n    return y\n"
    complexity = analyze_code(files({"m.py": code})).complexity
    assert complexity is not None
    assert complexity.functions == 2
    assert complexity.max_cyclomatic == 16
    assert complexity.complex_functions == 1
    assert complexity.most_complex[0].name == "tangled"
    assert complexity.rating == "high"


@requires_lizard
def test_complexity_budget_notes_what_was_left_out() -> None:
    signals = analyze_code(
        files({"big.py": "x = 1\n" * 1000, "small.py": "def f():\n    return 1\n"}),
        max_complexity_file_chars=1000,
    )
    assert signals.complexity is not None and signals.complexity.files_analysed == 1
    assert any("big.py" in note for note in signals.notes)


def test_decode_source() -> None:
    assert decode_source("naïve = 1".encode()) == "naïve = 1"
    assert decode_source(b"\xef\xbb\xbfx = 1") == "x = 1"
    assert decode_source("x = 1".encode("utf-16")) == "x = 1"
    assert decode_source("caf\xe9".encode("cp1252")) == "café"
    assert decode_source(b"abc\x00def") is None
    assert decode_source(bytes(range(1, 32)) * 20) is None


def test_language_for() -> None:
    assert language_for("a/b/C.TSX") == "TypeScript"
    assert language_for("x.cs") == "C#"
    assert language_for("README.md") is None


def test_nested_archives_are_noted_not_unpacked() -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("x.py", "x = 1")
    signals = analyze_code(files({"vendor.zip": inner.getvalue(), "a.py": "a = 1\n"}))
    assert any("not unpacked" in note for note in signals.notes)
