"""docs/cli.md, made from the command line itself: every command's usage, options and examples.

`python -m gankd.cli_reference > docs/cli.md` rewrites it; a test fails when the two differ, so the
page cannot drift from the code."""

from __future__ import annotations

import inspect

import typer

EXAMPLES = "Examples:"


def commands() -> dict:
    """Every runnable command by its full name (`gankd data split`), in the order help lists them."""
    from gankd.cli import app

    found = {}

    def walk(command, path: str) -> None:
        if hasattr(command, "commands"):  # a group (typer's own copy of click: no isinstance checks)
            for name, sub in command.commands.items():
                walk(sub, f"{path} {name}")
        else:
            found[path] = command

    walk(typer.main.get_command(app), "gankd")
    return found


def summary(command) -> str:
    """The help text before the examples, as one paragraph per line."""
    text = inspect.cleandoc(command.help or "").split(EXAMPLES)[0].strip()
    return "\n\n".join(" ".join(part.split()) for part in text.split("\n\n"))


def examples(command) -> list[str]:
    """The command lines of a command's Examples section."""
    text = inspect.cleandoc(command.help or "").partition(EXAMPLES)[2]
    return [line.strip() for line in text.splitlines() if line.strip() and line.strip() != "\b"]


def is_argument(param) -> bool:
    return param.param_type_name == "argument"


def option_names(param) -> str:
    if is_argument(param):
        return param.metavar or param.name.upper()
    names = [*param.opts, *param.secondary_opts]
    return ", ".join(sorted(names, key=len, reverse=True))


def default_text(param) -> str:
    if param.required:
        return "required"
    if param.default is None or is_argument(param) or \
            getattr(param, "is_flag", False) and param.default is False:
        return ""
    return str(param.default)


def cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def reference() -> str:
    """The page: a table of options per command, then its examples."""
    lines = ["# Command line reference", "",
             "Made by `python -m gankd.cli_reference > docs/cli.md` from the command line itself (a test fails when "
             "they differ). Every command takes `-h`; `gankd --version` prints the version. The same idea has the same "
             "name everywhere: the checkpoint a command works on is its first argument (a model in a role is "
             "named by the role: `adapt --source`, `distill --teacher`), the output is `--out` (refused if it exists, "
             "unless `--force`; run and bench folders resume instead), a count is `--n`, the device is `--device` "
             "(default `auto`: a GPU when there is one).", ""]
    found = commands()
    lines += ["| command | what it does |", "| --- | --- |"]
    lines += [f"| [`{path}`](#{path.replace(' ', '-')}) | {cell(summary(command).splitlines()[0])} |"
              for path, command in found.items()]
    lines.append("")
    for path, command in found.items():
        params = [p for p in command.params if p.name != "help"]
        lines += [f"## `{path}`", "", summary(command), "",
                  "| option | default | meaning |", "| --- | --- | --- |"]
        lines += [f"| `{cell(option_names(p))}` | {cell(default_text(p))} | {cell(getattr(p, 'help', None) or '')} |"
                  for p in params]
        lines += ["", "```bash", *examples(command), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(reference(), end="")
