from __future__ import annotations

from pathlib import Path

import pytest

from forebay.errors import ConfigError
from forebay.settings import parse_listen
from forebay.settings_load import load_settings


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "forebay.yaml"
    config.write_text(
        "origin: http://127.0.0.1:9000/\nlisten: 127.0.0.1:1\nadmin: {token: file}\n"
        "limits: {max_body: 2MB}\nimport: [spec.yaml]\nstore: sqlite:///data/f.db\n"
    )
    s = load_settings(
        config,
        overrides={"listen": "127.0.0.1:3"},
        environ={
            "FOREBAY_LISTEN": "127.0.0.1:2",
            "FOREBAY_ADMIN__TOKEN": "env",
            "FOREBAY_WORKERS": "3",
        },
    )
    assert s.origin == "http://127.0.0.1:9000"
    assert s.listen == "127.0.0.1:3"
    assert s.admin.token == "env"
    assert s.workers == 3
    assert s.limits.max_body == 2_000_000
    # Relative paths are read from the config file's folder.
    assert s.import_ == [str(tmp_path / "spec.yaml")]
    assert s.store == f"sqlite:///{tmp_path}/data/f.db"


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("origin: ftp://x\n", "origin"),
        ("listen: nowhere\n", "listen"),
        ("workers: 0\n", "workers"),
        ("limits: {max_body: lots}\n", "limits.max_body"),
        ("endpoints: {'/orders': {managed: true}}\n", "endpoints"),
        ("endpoints: {'POST /orders': {managed: maybe}}\n", "endpoints.POST /orders.managed"),
        ("colour: blue\n", "colour"),
        ("store: postgres://x\n", "store"),
        ("[1, 2]\n", "must be a mapping"),
        ("origin: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_settings_name_the_setting(tmp_path: Path, yaml_text: str, message: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(yaml_text)
    with pytest.raises(ConfigError) as err:
        load_settings(config, environ={})
    assert message in str(err.value)
    assert str(config) in str(err.value)


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "absent.yaml", environ={})


@pytest.mark.parametrize(
    ("value", "parsed"),
    [("127.0.0.1:80", ("127.0.0.1", 80)), (":8080", ("0.0.0.0", 8080)), ("[::1]:9", ("::1", 9))],
)
def test_parse_listen(value: str, parsed: tuple[str, int]) -> None:
    assert parse_listen(value) == parsed
