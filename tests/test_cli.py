"""The command line, run in-process with click's runner against real files and stores."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from forebay.cli import main

DEMO_SPEC = Path(__file__).parents[1] / "forebay" / "demo" / "openapi.yaml"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_dry_run_json_prints_endpoints_and_stores_nothing(tmp_path: Path) -> None:
    code, out, _ = invoke(
        "import", str(DEMO_SPEC), "--dry-run", "--json", "--store", f"sqlite:///{tmp_path}/f.db"
    )
    assert code == 0
    rows = json.loads(out)
    assert {"method": "POST", "path": "/orders"}.items() <= next(
        r for r in rows if r["method"] == "POST" and r["path"] == "/orders"
    ).items()
    assert len(rows) == 16
    assert not (tmp_path / "f.db").exists()


def test_import_merges_into_the_store(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/f.db"
    code, out, _ = invoke("import", str(DEMO_SPEC), "--store", store)
    assert code == 0 and "16 endpoints, 16 added" in out
    code, out, _ = invoke("import", str(DEMO_SPEC), "--store", store)
    assert "16 endpoints, 0 added" in out
    code, out, _ = invoke("endpoints", "set", "POST", "/orders", "--async", "on", "--store", store)
    assert code == 0 and "managed, async" in out
    code, out, _ = invoke("endpoints", "list", "--method", "post", "--store", store)
    assert [line.split()[1] for line in out.splitlines()] == ["/items", "/orders", "/users"]
    assert "managed, async" in next(line for line in out.splitlines() if "/orders" in line)


def test_bad_spec_exits_2_naming_file_and_place(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("openapi: 3.0.0\ninfo: {title: x\npaths: {}\n")
    code, _, err = invoke("import", str(bad), "--dry-run")
    assert code == 2
    assert str(bad) in err and "line" in err


def test_missing_file_exits_2(tmp_path: Path) -> None:
    code, _, err = invoke("import", str(tmp_path / "nope.yaml"), "--dry-run")
    assert code == 2 and "nope.yaml" in err


def test_bad_config_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "forebay.yaml"
    config.write_text("origin: http://x\nlimits: {max_body: lots}\n")
    code, _, err = invoke("run", "--config", str(config))
    assert code == 2 and "limits.max_body" in err


def test_run_without_origin_exits_2(tmp_path: Path) -> None:
    code, _, err = invoke("run", "--store", "memory://")
    assert code == 2 and "no origin" in err


def test_set_unknown_endpoint_fails(tmp_path: Path) -> None:
    code, _, err = invoke(
        "endpoints", "set", "GET", "/nope", "--cache", "5", "--store", f"sqlite:///{tmp_path}/f.db"
    )
    assert code == 1 and "no endpoint GET /nope" in err


def test_cache_settings_from_the_command_line(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/f.db"
    assert invoke("import", str(DEMO_SPEC), "--store", store)[0] == 0
    code, _, err = invoke(
        "endpoints", "set", "GET", "/items", "--stale-if-error", "30", "--store", store
    )
    assert code == 2 and "does not cache" in err
    code, out, _ = invoke(
        "endpoints",
        "set",
        *("GET", "/items", "--cache", "60", "--stale-while-revalidate", "10"),
        *("--respect-origin", "on", "--store", store),
    )
    assert code == 0, out
    assert "cache 60s (stale-while-revalidate 10s) (respects origin)" in out
    # Later changes keep what they do not name.
    code, out, _ = invoke(
        "endpoints", "set", "GET", "/items", "--stale-if-error", "300", "--store", store
    )
    assert code == 0 and "stale-while-revalidate 10s" in out and "stale-if-error 300s" in out
    code, _, err = invoke(
        "endpoints", "set", "GET", "/items", "--stale-if-error", "-1", "--store", store
    )
    assert code == 2 and "stale_if_error" in err
    code, _, err = invoke(
        "endpoints",
        "set",
        "GET",
        "/items",
        "--cache",
        "off",
        "--stale-if-error",
        "1",
        "--store",
        store,
    )
    assert code == 2 and "--cache off" in err
