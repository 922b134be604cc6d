"""Configuration precedence: flag > env var > minisched.toml > default; secrets never printed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from minisched.settings import ConfigError, load_settings, mask_secrets


def test_defaults_live_under_home(tmp_path: Path) -> None:
    settings = load_settings(environ={"MINISCHED_HOME": str(tmp_path)})
    assert settings.db_url == f"sqlite:///{tmp_path / 'minisched.db'}"
    assert settings.dags_folder == tmp_path / "dags"
    assert settings.logs_folder == tmp_path / "logs"
    assert settings.executor == "local"
    assert settings.zombie_threshold == 60
    assert settings.parallelism >= 1


def test_precedence_flag_env_file_default(tmp_path: Path) -> None:
    (tmp_path / "minisched.toml").write_text(
        'parallelism = 3\nexecutor = "sequential"\nzombie_threshold = 5\n'
    )
    environ = {"MINISCHED_HOME": str(tmp_path), "MINISCHED_PARALLELISM": "7"}
    settings = load_settings({"parallelism": None}, environ=environ)
    assert (settings.parallelism, settings.executor, settings.zombie_threshold) == (7, "sequential", 5)
    assert load_settings({"parallelism": 9}, environ=environ).parallelism == 9


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("MINISCHED_PARALLELISM", "zero", "parallelism"),
        ("MINISCHED_EXECUTOR", "kubernetes", "unknown executor"),
        ("MINISCHED_DAGS_ARE_PAUSED_AT_CREATION", "maybe", "true or false"),
    ],
)
def test_bad_values_name_the_setting_and_source(tmp_path: Path, key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_settings(environ={"MINISCHED_HOME": str(tmp_path), key: value})
    assert key in str(info.value)


def test_unknown_key_in_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "minisched.toml").write_text("paralelism = 3\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(environ={"MINISCHED_HOME": str(tmp_path)})


def test_broken_toml_is_reported(tmp_path: Path) -> None:
    (tmp_path / "minisched.toml").write_text("db_url = \n")
    with pytest.raises(ConfigError, match=r"minisched\.toml"):
        load_settings(environ={"MINISCHED_HOME": str(tmp_path)})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://user:s3cret@host:5432/db", "postgresql://user:***@host:5432/db"),
        ("postgresql+psycopg://u:p%40ss@h/db", "postgresql+psycopg://u:***@h/db"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
        ("host=h password=hunter2 user=u", "host=h password=*** user=u"),
    ],
)
def test_mask_secrets(text: str, expected: str) -> None:
    assert mask_secrets(text) == expected


def test_default_timezone_is_utc_and_must_be_a_known_zone(tmp_path: Path) -> None:
    home = {"MINISCHED_HOME": str(tmp_path)}
    assert load_settings(environ=home).default_timezone == "UTC"
    assert load_settings(environ={**home, "MINISCHED_DEFAULT_TIMEZONE": "utc"}).default_timezone == "UTC"
    berlin = {**home, "MINISCHED_DEFAULT_TIMEZONE": "Europe/Berlin"}
    assert load_settings(environ=berlin).default_timezone == "Europe/Berlin"
    with pytest.raises(ConfigError, match="MINISCHED_DEFAULT_TIMEZONE: unknown timezone"):
        load_settings(environ={**home, "MINISCHED_DEFAULT_TIMEZONE": "Mars/Olympus"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://u:p@ss@host/db", "postgresql://u:***@host/db"),
        (
            '{"url": "redis://:tok@h:1/0", "x": "a://b:c@d"}',
            '{"url": "redis://:***@h:1/0", "x": "a://b:***@d"}',
        ),
        ("see http://host/path?next=a:b@c", "see http://host/path?next=a:b@c"),
        ("a://b:c", "a://b:c"),
        ("Password = x1 password=x2", "Password = *** password=***"),
        # Letters the case-insensitive pattern matches beyond ASCII case: the long s is an "s".
        ("PA\u017f\u017fWORD=x1", "PA\u017f\u017fWORD=***"),
    ],
)
def test_mask_secrets_edge_cases(text: str, expected: str) -> None:
    assert mask_secrets(text) == expected


#: name -> (text, length once masked)
_ADVERSARIAL = {
    "letters": ("a" * 2_000_000, 2_000_000),
    "schemes": ("x://y:" * 400_000, 2_400_000),
    "marks": ("://" * 700_000, 2_100_000),
    "at-signs": ("a://b:" + "@" * 2_000_000, len("a://b:***@")),
    "passwords": ("password " * 250_000, 2_250_000),
    "equals": ("password" + " " * 1_000_000 + "=" * 1_000_000, 1_000_012),
}


@pytest.mark.parametrize("name", list(_ADVERSARIAL))
def test_masking_is_linear(name: str) -> None:
    """2 MB of adversarial text is masked within 20 s of CPU time; a quadratic masker needs hours.

    CPU time (RLIMIT_CPU), not wall-clock: a loaded machine slows the test, it cannot fail it.
    """
    code = textwrap.dedent(
        f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_CPU, (20, 20))
        from minisched.db.audit import mask_extra
        from tests.test_settings import _ADVERSARIAL
        text = _ADVERSARIAL[{name!r}][0]
        masked = mask_extra({{"conf": [text], "description": text}})
        assert masked["description"] == masked["conf"][0]
        print(len(masked["description"]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) == _ADVERSARIAL[name][1]
