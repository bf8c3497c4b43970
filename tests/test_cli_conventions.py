"""One name per idea across all commands, examples that parse, and docs/cli.md as the CLI makes it."""

import shlex
from pathlib import Path

import pytest

from gankd.cli_reference import commands, examples, is_argument, reference

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = commands()
# Names another command spells differently: the output is --out, a count --n, the checkpoint positional.
FORBIDDEN = {"--outdir", "--output", "--output-dir", "--dst", "--grid", "--ckpt", "--checkpoint", "--num",
             "--num-samples", "--count", "--samples", "--gpu", "--cuda", "--overwrite"}


def options(command) -> dict:
    """Every option by each of its names."""
    return {name: p for p in command.params if not is_argument(p) for name in p.opts + p.secondary_opts}


def test_the_walk_finds_every_command():
    assert {"gankd generate", "gankd train", "gankd data split", "gankd bench fewshot", "gankd project"} \
        <= set(COMMANDS)


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_shared_option_names(path, run_cli):
    command = COMMANDS[path]
    named = options(command)
    code, out, _ = run_cli(*path.split()[1:], "-h")
    assert code == 0 and out.startswith(f"Usage: {path} "), f"{path}: no -h"
    assert not FORBIDDEN & set(named), f"{path}: {FORBIDDEN & set(named)}"
    if "--device" in named:
        assert named["--device"].default == "auto", f"{path}: --device must default to auto"
    if "--out" in named:
        assert "-o" in named["--out"].opts, f"{path}: --out without -o"
        writes_once = "--force" in named
        resumes = "--resume" in named or "resume" in (named["--out"].help or "")
        assert writes_once or resumes, f"{path}: --out with neither --force nor a resumable folder"
    if "--force" in named:
        assert named["--force"].is_flag and not named["--force"].secondary_opts, f"{path}: --force must be a plain flag"
    ckpt = [p for p in command.params if p.name == "ckpt"]
    if ckpt:
        assert is_argument(ckpt[0]) and command.params.index(ckpt[0]) == 0, \
            f"{path}: the checkpoint is the first argument"


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_every_command_has_examples_that_parse(path):
    """Each example names this command and parses with its options (an option renamed without its
    example breaks here)."""
    lines = examples(COMMANDS[path])
    assert lines, f"{path}: no Examples section"
    for line in lines:
        assert parsed(line) == path, line


def parsed(line: str) -> str:
    """The command a `gankd ...` line runs, after parsing it with that command's options (raises on
    an unknown option, a missing value or a wrong type)."""
    words = shlex.split(line)
    words = words[words.index("gankd"):]
    path = max((p for p in COMMANDS if words[:len(p.split())] == p.split()), key=len)
    COMMANDS[path].make_context(path, words[len(path.split()):]).close()
    return path


def test_the_commands_gankd_writes_for_users_parse():
    """Command lines gankd prints into files (a model card's usage) use today's options."""
    from gankd.pretrained import USAGE

    for family, line in USAGE.items():
        assert parsed(line.format(dir="model")).split()[1] in ("generate", "translate", "age"), family


def test_version_and_help(run_cli):
    from gankd import __version__

    code, out, _ = run_cli("--version")
    assert code == 0 and out.strip() == f"gankd {__version__}"
    code, out, _ = run_cli("generate", "-h")
    assert code == 0 and "Examples:" in out and "--out" in out and "[default: auto]" in out


def test_misspelt_settings_and_spec_fields_get_a_suggestion(run_cli):
    code, _, err = run_cli("train", "bacth=4", "--dry-run")
    assert code == 2 and "unknown setting 'bacth' (did you mean 'batch'?)" in err and len(err.splitlines()) == 1
    code, _, err = run_cli("data", "show", "emoji:grop=animals")
    assert code == 2 and "no field or option 'grop' (did you mean 'group'?)" in err and len(err.splitlines()) == 1


def test_force_replaces_only_what_gankd_wrote(run_cli, tmp_path):
    out = tmp_path / "threes"
    assert run_cli("data", "export", "digits:digit=3", "--out", out, "--res", "8")[0] == 0
    (out / "stale.png").write_bytes(b"old")
    code, _, err = run_cli("data", "export", "digits:digit=3", "--out", out, "--res", "8")
    assert code == 2 and "not an empty folder" in err
    assert run_cli("data", "export", "digits:digit=3", "--out", out, "--res", "8", "--force")[0] == 0
    assert not (out / "stale.png").exists() and (out / "labels.json").exists()  # replaced whole
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    code, _, err = run_cli("data", "export", "digits:digit=3", "--out", mine, "--force")
    assert code == 2 and "gankd did not write it" in err and (mine / "notes.txt").read_text() == "keep"


def test_docs_cli_md_is_what_the_cli_says():
    assert (ROOT / "docs" / "cli.md").read_text() == reference(), \
        "docs/cli.md is out of date: python -m gankd.cli_reference > docs/cli.md"
