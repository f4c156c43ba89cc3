"""The generated parts of docs/canonical-model-rules.md: state tables and code lists.

Between ``<!-- BEGIN GENERATED name -->`` and ``<!-- END GENERATED name -->`` the document holds the output
of the functions here, never hand-written text; ``python -m esb.model.rulesdoc [project]`` rewrites them
and ``tests/unit/test_rules_doc.py`` fails when the document is out of date.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from esb.model.codelists import CodeLists, load_codelists
from esb.model.states import MACHINES

RULES_DOC = Path("docs") / "canonical-model-rules.md"


def states_markdown() -> str:
    """Markdown tables of every state machine (state, next states)."""
    parts: list[str] = []
    for m in MACHINES.values():
        parts.append(f"### `{m.name}`: {m.description}\n")
        parts.append(
            f"Standard: {m.standard}. Created in: {', '.join(f'`{s}`' for s in sorted(m.initial))}.\n"
        )
        parts.append("| state | may move to |\n|---|---|")
        for state in m.states:
            nxt = ", ".join(f"`{s}`" for s in sorted(m.transitions[state])) or "final"
            parts.append(f"| `{state}` | {nxt} |")
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def codelists_markdown(lists: CodeLists) -> str:
    """Markdown tables of every code list: canonical value, then each system's codes for it."""
    parts: list[str] = []
    for name, cl in lists.lists.items():
        systems = sorted(cl.systems)
        parts.append(f"### `{name}`: {cl.description}\n")
        parts.append("| canonical | " + " | ".join(systems) + " |")
        parts.append("|---|" + "---|" * len(systems))
        for value in cl.canonical:
            cells = [
                ", ".join(f"`{c}`" for c, v in cl.systems[s].items() if v == value) or "—" for s in systems
            ]
            parts.append(f"| `{value}` | " + " | ".join(cells) + " |")
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def _replacer(body: str) -> Callable[[re.Match[str]], str]:
    def replace(m: re.Match[str]) -> str:
        return m[1] + body + m[2]

    return replace


def render(text: str, project: Path) -> str:
    """Return ``text`` with its generated sections replaced by the current output."""
    sections = {"states": states_markdown(), "codelists": codelists_markdown(load_codelists(project))}
    for name, body in sections.items():
        pattern = re.compile(
            rf"(<!-- BEGIN GENERATED {name} -->\n).*?(<!-- END GENERATED {name} -->)", flags=re.DOTALL
        )
        text = pattern.sub(_replacer(body), text)
    return text


def main(argv: list[str]) -> int:
    """Rewrite the generated sections of the rules document of the project ``argv[0]`` (default: cwd)."""
    project = Path(argv[0]) if argv else Path.cwd()
    path = project / RULES_DOC
    text = path.read_text(encoding="utf-8")
    path.write_text(render(text, project.resolve()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
