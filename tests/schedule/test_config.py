"""Options and the config file of ``tianjin-updates schedule``; the trigger they make."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from crawler.schedule import (
    ConfigError,
    CrawlSpec,
    build_config,
    format_duration,
    make_trigger,
    parse_duration,
    read_config_file,
    trigger_key,
)

from .conftest import child_env, cli_path


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10), ("30m", 1800), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("90", 90),
     ("0.5s", 0.5), (" 2H ", 7200), (45, 45)],
)  # fmt: skip
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "10x", "0s", "-5", "1h and 2m", "m"])
def test_bad_durations_are_one_line_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="duration|longer than 0"):
        parse_duration(text)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (2.5, 59.94, 90, 5400, 86400)] == [
        "2.5s", "59.9s", "1m30s", "1h30m", "1d",
    ]  # fmt: skip


def _next(expr: str, zone: str = "UTC") -> datetime:
    config = build_config(db="sqlite://", cron=expr, timezone=zone)
    start = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)  # a Wednesday
    fire = make_trigger(config).get_next_fire_time(None, start)
    assert fire is not None
    return fire


def test_cron_weekdays_count_from_sunday_as_in_crontab() -> None:
    assert _next("0 3 * * 1").strftime("%a %H:%M") == "Mon 03:00"
    assert _next("0 3 * * 0").strftime("%a") == "Sun"
    assert _next("0 3 * * 7").strftime("%a") == "Sun"
    assert _next("0 3 * * 5-7").strftime("%a") == "Fri"
    assert _next("0 3 * * 1-5/2").strftime("%a") == "Fri"  # Mon, Wed, Fri; Wed 03:00 is past
    assert _next("0 3 * * sat,sun").strftime("%a") == "Sat"
    assert _next("0 */2 * * *") == datetime(2025, 1, 1, 12, 0, tzinfo=UTC)  # now is a slot
    assert _next("1 */2 * * *") == datetime(2025, 1, 1, 12, 1, tzinfo=UTC)
    assert _next("0 1-23/2 * * *") == datetime(2025, 1, 1, 13, 0, tzinfo=UTC)


def test_cron_time_zone() -> None:
    fire = _next("30 8 * * *", "Asia/Shanghai")
    assert fire.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%H:%M") == "08:30"
    assert fire.astimezone(UTC).strftime("%d %H:%M") == "02 00:30"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "no schedule"),
        ({"cron": "0 3 * *"}, "expected 5 fields"),
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "0 3 * * 9"}, "out of range"),
        ({"every": "1h", "timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"every": "never"}, "--every"),
        ({"every": "1h", "timeout": "x"}, "--timeout"),
    ],
)
def test_bad_options(options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_config(db="sqlite://", **options)  # type: ignore[arg-type]


def test_config_file_and_command_line(tmp_path: Path) -> None:
    path = tmp_path / "schedule.toml"
    path.write_text(
        """
db = "sqlite:///from-file.sqlite3"
start_url = "http://example.test/"
cron = "0 */6 * * *"
timezone = "Asia/Shanghai"
timeout = "2h"
grace = 30
max_pages = 3
job_id = "nightly"
log_file = "/tmp/x.log"

[settings]
DOWNLOAD_DELAY = 2.5
ROBOTSTXT_OBEY = true
TIANJIN_HOSTS = ["a.test", "b.test"]
""",
        encoding="utf-8",
    )
    file = read_config_file(str(path))
    config = build_config(db="sqlite://", file=file)
    assert (config.cron, config.every, config.timezone) == ("0 */6 * * *", None, "Asia/Shanghai")
    assert config.crawl == CrawlSpec(
        start_url="http://example.test/",
        max_pages=3,
        settings={
            "DOWNLOAD_DELAY": "2.5",
            "ROBOTSTXT_OBEY": "True",
            "TIANJIN_HOSTS": "a.test,b.test",
        },
        timeout=7200,
    )
    assert (config.grace, config.job_id, config.log_file) == (30, "nightly", "/tmp/x.log")
    # The command line wins: --every replaces the file's cron; -s is merged over [settings].
    config = build_config(
        db="sqlite://", file=file, every="30m", settings={"DOWNLOAD_DELAY": "0"}, max_pages=1
    )
    assert (config.every, config.cron) == (1800, None)
    assert config.crawl.settings["DOWNLOAD_DELAY"] == "0"
    assert config.crawl.max_pages == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("every = ", "not valid TOML"),
        ("evry = '1h'", "unknown key 'evry'"),
        ("every = '1h'\nmax_pages = 'x'", "max_pages must be a whole number"),
        ("every = true", "expected a duration"),
        ("every = '1h'\nsettings = 3", "settings must be a table"),
    ],
)
def test_bad_config_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        read_config_file(str(path))


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        read_config_file(str(tmp_path / "nope.toml"))


def test_trigger_identity_ignores_when_it_was_made() -> None:
    a = make_trigger(build_config(db="sqlite://", every="30m"))
    b = make_trigger(build_config(db="sqlite://", every="1800s"))
    c = make_trigger(build_config(db="sqlite://", every="31m"))
    assert trigger_key(a) == trigger_key(b) != trigger_key(c)
    d = make_trigger(build_config(db="sqlite://", cron="0 3 * * *"))
    e = make_trigger(build_config(db="sqlite://", cron="0 3 * * *", timezone="Asia/Shanghai"))
    assert trigger_key(d) != trigger_key(e)


def schedule(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [cli_path(), "schedule", *args],
        capture_output=True, text=True, timeout=60, env=child_env(), cwd=cwd, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ([], 1, "no schedule: give --every DURATION or --cron EXPR"),
        (["--every", "soon"], 1, "--every: expected a duration like 10s"),
        (["--every", "1h", "--cron", "* * * * *"], 2, "not allowed with argument"),
        (["--cron", "bad"], 1, "cron: expected 5 fields"),
        (["--every", "1h", "--config", "missing.toml"], 1, "cannot read config file missing.toml"),
        (["--every", "1h", "-s", "NOEQUALS"], 1, "-s expects NAME=VALUE"),
    ],
)
def test_usage_errors_are_one_line(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    result = schedule(*args, "--db", f"sqlite:///{tmp_path / 'x.sqlite3'}", cwd=tmp_path)
    assert result.returncode == code
    assert message in result.stderr
    if code == 1:
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
