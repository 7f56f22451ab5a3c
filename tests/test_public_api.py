"""The public API is exactly what harness/__init__.py exports, and it is cheap."""

import subprocess
import sys

import harness


def test_exported_names_are_the_public_api() -> None:
    public = {name for name in dir(harness) if not name.startswith("_")}
    assert public == set(harness.__all__)
    for name in harness.__all__:
        assert getattr(harness, name) is not None


def test_importing_the_plugin_loads_no_heavy_module() -> None:
    code = (
        "import sys, harness.plugin;"
        "heavy = [m for m in ('fastapi', 'psycopg', 'httpx', 'respx', 'pydantic', 'yaml')"
        " if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
