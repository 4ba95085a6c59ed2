"""The README's first lines are the two commands, and it documents every setting."""

from __future__ import annotations

from pathlib import Path

from loyalty.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_readme_starts_with_make_run_and_make_test() -> None:
    block = README.split("```sh", 1)[1].split("```", 1)[0].strip().splitlines()
    assert block[0].startswith("make run")
    assert block[1].startswith("make test")


def test_every_setting_is_documented() -> None:
    missing = [name for name in Settings.model_fields if f"`LOYALTY_{name.upper()}`" not in README]
    assert not missing, f"settings missing from README's configuration table: {missing}"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci
