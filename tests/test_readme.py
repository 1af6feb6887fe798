"""The README documents every setting, and its table is the one `backstop settings` prints."""

import re
from pathlib import Path

from services.cli.settings import markdown, rows

README = Path(__file__).parent.parent / "README.md"


def settings_section() -> str:
    text = README.read_text()
    match = re.search(r"<!-- settings:begin.*?-->\n(.*?)<!-- settings:end -->", text, re.S)
    assert match, "README lacks the settings markers"
    return match.group(1)


def test_every_setting_is_in_the_readme() -> None:
    section = settings_section()
    missing = [variable for variable, *_ in rows() if f"`{variable}`" not in section]
    assert not missing, f"README lacks {missing}; paste the output of `backstop settings`"


def test_readme_table_is_current() -> None:
    assert settings_section().strip() == markdown().strip(), (
        "README settings table is stale; paste the output of `backstop settings`"
    )
