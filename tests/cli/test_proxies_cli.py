"""``zcnas proxies list`` on a registry of fakes: two good proxies (one in-process, one from
an entry point) and one broken entry point, declared by real metadata in a temporary folder."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from zcnas import registry
from zcnas.cli import main
from zcnas.proxy import Proxy, ProxyInfo

GROUP = "zcnas.tests.cli_proxies"

PLUGIN = '''
from zcnas.proxy import Proxy, ProxyInfo


class Beta(Proxy):
    info = ProxyInfo(name="fake_beta", version="7", reference="Beta et al. 2099", code="c",
                     needs_labels=True, needs_images=True, input="real", bn="train",
                     init="kaiming_normal_fan_in", batch_size=32, n_batches=4,
                     higher_is_better=False, transform="log")

    def score(self, ctx):
        return 1.0
'''


class Alpha(Proxy):
    info = ProxyInfo(name="fake_alpha", version="2", reference="Alpha & Co, 2024", code="c",
                     needs_labels=False, needs_images=False, input="gaussian", bn="none",
                     per_arch=True)

    def score(self, ctx):
        return 0.0


@pytest.fixture
def run(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "zc_cli_plugin").mkdir(parents=True)
    (site / "zc_cli_plugin" / "__init__.py").write_text(PLUGIN)
    info = site / "zc_cli_plugin-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: zc-cli-plugin\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(
        f"[{GROUP}]\nfake_beta = zc_cli_plugin:Beta\nfake_gone = zc_cli_no_such_module:Gone\n")
    (info / "RECORD").write_text("")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("ZCNAS_PLUGIN_RAISE", raising=False)
    reg = registry.Registry(GROUP, kind="proxy", validate=registry.validate_proxy,
                            list_command="zcnas proxies list")
    reg.register("fake_alpha", Alpha)
    monkeypatch.setattr(registry, "PROXIES", reg)
    yield lambda *args: CliRunner().invoke(main, ["proxies", "list", *args])
    sys.modules.pop("zc_cli_plugin", None)


def test_table_lists_metadata_and_broken_plugins(run):
    r = run()
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].split() == ["proxy", "input", "labels", "better", "BN", "init", "batch",
                                "report", "spaces", "from"]
    assert max(len(ln) for ln in lines) <= 100  # fits 100 columns
    alpha = next(ln for ln in lines if ln.startswith("fake_alpha"))
    assert alpha.split() == ["fake_alpha", "gaussian", "-", "higher", "none", "torch", "64x1", "-",
                             "any", "<in-process>", "v2"]
    beta = next(ln for ln in lines if ln.startswith("fake_beta"))
    assert beta.split() == ["fake_beta", "real", "yes", "lower", "train", "kaiming-in", "32x4",
                            "log", "any", "zc-cli-plugin", "v7"]
    assert "each architecture (the value reads dead edges too): fake_alpha; the others" in \
        " ".join(lines)
    assert "Broken (1):" in r.output
    gone = next(ln for ln in lines if ln.startswith("fake_gone"))
    assert "zc-cli-plugin 0.3" in gone and "zc_cli_no_such_module:Gone" in gone
    assert lines[lines.index(gone) + 1].strip().startswith("ModuleNotFoundError")


def test_json(run):
    r = run("--format", "json")
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads(r.output)}
    assert set(rows) == {"fake_alpha", "fake_beta", "fake_gone"}
    beta = rows["fake_beta"]
    assert (beta["status"], beta["distribution"], beta["distribution_version"]) == (
        "ok", "zc-cli-plugin", "0.3")
    assert beta["info"]["batch_size"] == 32 and beta["info"]["higher_is_better"] is False
    assert beta["info"]["spaces"] is None  # any space
    assert rows["fake_alpha"]["distribution"] == "<in-process>"
    gone = rows["fake_gone"]
    assert gone["status"] == "broken" and gone["error"].startswith("ModuleNotFoundError")


def test_filter(run):
    r = run("alpha")
    assert r.exit_code == 0, r.output
    assert "fake_alpha" in r.output and "fake_beta" not in r.output
    assert "Broken" not in r.output
    r = run("fake_b*", "--format", "json")
    assert [row["name"] for row in json.loads(r.output)] == ["fake_beta"]
    r = run("nothing_like_this")
    assert r.exit_code == 0 and "no proxies match 'nothing_like_this'" in r.output


def test_bad_format_is_a_usage_error(run):
    r = run("--format", "yaml")
    assert r.exit_code == 2 and "yaml" in r.output


def test_proxies_help_does_not_import_torch():
    # `zcnas --help` itself is covered in test_cli.py
    code = (
        "import sys\n"
        "from zcnas.cli import main\n"
        "try:\n    main(['proxies', 'list', '--help'])\n"
        "except SystemExit as e:\n    assert e.code == 0\n"
        "sys.exit(3 if 'torch' in sys.modules else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "FILTER" in proc.stdout and "--format" in proc.stdout
