"""One command: every tool is an ``aiornot …`` subcommand with its --help; a user's mistake is one line and exit code 2."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import photo_like

from aiornot import cli

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "models" / "default"
TOOLS = ("describe", "model-card", "readme", "build-sample", "build-encoders", "full-run", "ray-embed")


def subcommands() -> list[str]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(action.choices)


def test_every_tool_is_a_subcommand_of_the_one_parser():
    assert set(subcommands()) == {"scan", "serve", *TOOLS}


@pytest.mark.parametrize("command", subcommands())
def test_every_subcommand_has_its_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: aiornot {command} ") and "options:" in out


def test_no_module_but_the_cli_has_a_main():
    """Tools are subcommands, not ``python -m aiornot.<module>`` scripts with their own argument parsing."""
    offenders = []
    for path in sorted((ROOT / "aiornot").rglob("*.py")):
        if path.name in ("cli.py", "__main__.py"):
            continue
        name, source = path.relative_to(ROOT), path.read_text(encoding="utf-8")
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef) and node.name == "main":
                offenders.append(f"{name}: def main")
            if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
                offenders.append(f"{name}: if __name__ == '__main__'")
        offenders += [f"{name}: {what}" for what in ("ArgumentParser(", "sys.argv") if what in source]
    assert offenders == []


def test_python_dash_m_aiornot_is_the_command():
    done = subprocess.run([sys.executable, "-m", "aiornot", "model-card", "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("usage: aiornot model-card")


def _folder_of_photos(root: Path) -> Path:
    for label, names in (("real", ("a", "b", "c")), ("ai", ("d", "e", "f"))):
        (root / label).mkdir(parents=True)
        for seed, name in enumerate(names):
            photo_like(seed).save(root / label / f"{name}.png")
    return root


@pytest.mark.parametrize(("arguments", "message"), [
    (["describe", "{tmp}/missing"], "does not exist"),
    (["describe", "{tmp}/notes.txt"], "expected a .csv manifest or a .parquet file"),
    (["model-card", "{tmp}/missing"], "{tmp}/missing: no such model folder"),
    (["model-card", "{tmp}/notes.txt"], "{tmp}/notes.txt is a file; give the model folder"),
    (["model-card", "{tmp}"], "{tmp}/detector.json not found"),
    (["model-card", "{tmp}/bad"], "no schema_version"),
    (["readme", "{tmp}/missing.md", str(DEFAULT_MODEL)], "{tmp}/missing.md: no such README file"),
    (["readme", "{tmp}/notes.txt", str(DEFAULT_MODEL)], "README has no <!-- results:start -->"),
    (["readme", "{tmp}/README.md", "{tmp}/missing"], "{tmp}/missing: no such model folder"),
    (["readme", "{tmp}/README.md", str(DEFAULT_MODEL), "{tmp}/notes.txt"], "{tmp}/notes.txt is not valid JSON"),
    (["full-run", "{tmp}/missing"], "{tmp}/missing: no such dataset"),
    (["full-run", "{tmp}", "--test", "{tmp}/missing"], "{tmp}/missing: no such test dataset"),
    (["ray-embed", "{tmp}/missing"], "{tmp}/missing: no such dataset"),
    (["build-sample", "--sources", "{tmp}/missing.toml", "--out", "{tmp}/sample"], "no source list at {tmp}/missing.toml"),
])
def test_a_users_mistake_is_one_line_and_exit_code_2(arguments, message, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not what was asked for\n")
    (tmp_path / "README.md").write_text("<!-- results:start -->\nold\n<!-- results:end -->\n")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "detector.json").write_text("{}")
    code = cli.main([argument.replace("{tmp}", str(tmp_path)) for argument in arguments])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == cli.EXIT_USAGE and len(lines) == 1 and "Traceback" not in err, err
    assert message.replace("{tmp}", str(tmp_path)) in lines[0]
    assert not (tmp_path / "sample").exists()


def test_describe_prints_the_classes_and_the_split(tmp_path, capsys):
    assert cli.main(["describe", str(_folder_of_photos(tmp_path / "data"))]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "all" in out and "train" in out and "validation" in out and "class 1 (AI) %" in out


def test_model_card_and_readme_come_from_the_model_folder(tmp_path, capsys):
    assert cli.main(["model-card", str(DEFAULT_MODEL)]) == cli.EXIT_OK
    card = capsys.readouterr().out
    assert card.startswith("# Model card") and "`aiornot model-card`" in card
    assert card.strip() == (ROOT / "models" / "MODEL_CARD.md").read_text(encoding="utf-8").strip()  # make reports' card
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:start -->\nstale\n<!-- results:end -->\nrest\n")
    assert cli.main(["readme", str(readme), str(DEFAULT_MODEL), str(tmp_path / "not-measured-yet.json")]) == cli.EXIT_OK
    text = readme.read_text()
    assert "stale" not in text and text.startswith("intro\n<!-- results:start -->\n") and text.endswith("<!-- results:end -->\nrest\n")


def test_build_sample_outside_a_checkout_says_where_the_builder_lives(monkeypatch, capsys):
    import importlib

    def no_tools(name, *args):
        raise ModuleNotFoundError(f"No module named {name!r}", name="tools")

    monkeypatch.setattr(importlib, "import_module", no_tools)
    assert cli.main(["build-sample"]) == cli.EXIT_USAGE
    assert "lives in the aiornot repository, not in the installed package" in capsys.readouterr().err
