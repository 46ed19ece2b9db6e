"""Every setting is documented, by its full name: in the README's settings table and in
.env.example (with its default), and neither names a setting that does not exist."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from gateway.settings import PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {PREFIX + f.name.upper() for f in fields(Settings)}
NAME = re.compile(rf"`({PREFIX}[A-Z0-9_]+)`")
# A commented-out assignment in .env.example: "# GATEWAY_NAME=default".
ASSIGNMENT = re.compile(rf"^# ({PREFIX}[A-Z0-9_]+)=(.*)$", re.MULTILINE)


def readme_table() -> list[str]:
    """The names in the first column of the README's settings table."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("\n## Settings\n") :]
    rows = re.findall(r"^\| (`.+?) \|", section[: section.index("\n\n", section.index("| variable |"))], re.M)
    return [name for row in rows for name in NAME.findall(row)]


def env_example() -> dict[str, str]:
    return dict(ASSIGNMENT.findall((ROOT / ".env.example").read_text()))


def test_the_readme_table_names_every_setting_once_and_nothing_else() -> None:
    named = readme_table()
    assert sorted(set(named)) == sorted(named), "a setting has two rows"
    assert set(named) - SETTINGS == set(), "the README documents what is no setting"
    assert SETTINGS - set(named) == set(), "the README's settings table lacks these"


def test_env_example_lists_every_setting_with_its_default() -> None:
    listed = env_example()
    assert set(listed) - SETTINGS == set(), ".env.example lists what is no setting"
    assert SETTINGS - set(listed) == set(), ".env.example lacks these"
    # Read as the gateway reads its environment, the values are the defaults.
    assert Settings.from_env(listed) == Settings()


def test_env_example_names_nothing_else() -> None:
    text = (ROOT / ".env.example").read_text()
    assert set(re.findall(rf"\b{PREFIX}[A-Z0-9_]+\b", text)) <= SETTINGS
