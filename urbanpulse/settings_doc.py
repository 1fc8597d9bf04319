"""The configuration table of the README, generated from the settings themselves."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, SecretStr

from urbanpulse.settings import Settings


def _default(model: type[BaseModel], name: str) -> str:
    field = model.model_fields[name]
    value = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return "" if value is None else str(value)


def rows(model: type[BaseModel] = Settings, prefix: str = "URBANPULSE_") -> Iterator[str]:
    """One Markdown table row per environment variable: name, default, meaning."""
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            yield from rows(kind, f"{prefix}{name.upper()}__")
            continue
        default = _default(model, name)
        shown = f"`{default}`" if default else "(empty)"
        yield f"| `{prefix}{name.upper()}` | {shown} | {field.description or ''} |"


def table() -> str:
    """The whole Markdown table."""
    return "\n".join(["| variable | default | meaning |", "|---|---|---|", *rows()])


def rewrite(readme: Path) -> None:
    """Replace the table between the README's settings markers with the current one."""
    text = readme.read_text()
    new = re.sub(
        r"(<!-- settings:start[^>]*-->\n).*?(\n<!-- settings:end -->)",
        lambda m: m.group(1) + table() + m.group(2),
        text,
        flags=re.S,
    )
    readme.write_text(new)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write"]:
        rewrite(Path(sys.argv[2] if len(sys.argv) > 2 else "README.md"))
    else:
        print(table())
