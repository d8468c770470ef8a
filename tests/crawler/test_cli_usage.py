"""Usage errors of the tianjin-updates command: one line and exit status 2, before any work."""

from __future__ import annotations

import pytest

from crawler.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["crawl", "--max-pages", "0"],
            "argument --max-pages: expected a number of at least 1, got 0",
        ),
        (
            ["crawl", "--max-pages", "two"],
            "argument --max-pages: expected a whole number, got 'two'",
        ),
        (["export", "--since", "-1"], "argument --since: expected a number of at least 0, got -1"),
        (["export", "--format", "xml"], "argument --format: invalid choice: 'xml'"),
        (
            ["demo", "--articles", "0"],
            "argument --articles: expected a number of at least 1, got 0",
        ),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]


def test_bad_setting_option_is_a_one_line_error_with_status_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["crawl", "-s", "DOWNLOAD_DELAY"]) == 1
    assert (
        capsys.readouterr().err.strip()
        == "tianjin-updates: error: -s expects NAME=VALUE, got 'DOWNLOAD_DELAY'"
    )
