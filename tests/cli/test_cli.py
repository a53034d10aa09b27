import subprocess
import sys

import pytest
from click.testing import CliRunner

from zcnas.cli import main

ARCH_11 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"


@pytest.fixture
def run(monkeypatch):
    def _run(*args, data=None):
        monkeypatch.delenv("TORCH_HOME", raising=False)
        if data is None:
            monkeypatch.delenv("ZCNAS_DATA", raising=False)
        else:
            monkeypatch.setenv("ZCNAS_DATA", str(data))
        return CliRunner().invoke(main, list(args))

    return _run


def _one_line_error(result, fragment):
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("zcnas: error: ")
    assert fragment in lines[0]
    assert "Traceback" not in result.output


def test_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from zcnas.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "sys.exit(3 if 'torch' in sys.modules else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "arch" in proc.stdout and "info" in proc.stdout


def test_arch_with_table(run, data_root):
    r = run("arch", "11", data=data_root)
    assert r.exit_code == 0, r.output
    assert ARCH_11 in r.output
    assert "0.802426" in r.output and "113.95137" in r.output
    assert "91.5833" in r.output
    r2 = run("arch", ARCH_11, data=data_root)
    assert "index       11" in r2.output


def test_arch_without_data_still_describes(run):
    r = run("arch", ARCH_11)
    assert r.exit_code == 0, r.output
    assert "0.802426" in r.output and "iso key" in r.output
    assert "set ZCNAS_DATA" in r.output


def test_sss_arch(run, data_root):
    r = run("arch", "8:8:8:16:32", "--space", "sss", data=data_root)
    assert r.exit_code == 0, r.output
    assert "index       11" in r.output and "0.049202" in r.output


@pytest.mark.parametrize(
    "arch, fragment",
    [
        ("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv_5x5'"),
        ("|none~0|+|none~0|none~1|", "node group"),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|none~5|", "inputs must be 0..2"),
        ("|none~0|+|none~0,none~1|+|none~0|none~1|none~2|", "input edge(s)"),
    ],
)
def test_malformed_arch_is_one_line_exit_2(run, arch, fragment):
    _one_line_error(run("arch", arch), fragment)


def test_index_without_data(run):
    # the benchmark's numbering ships with the package: an index needs no data file
    r = run("arch", "11")
    assert r.exit_code == 0, r.output
    assert "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|" in r.output
    assert "index       11" in r.output and "indices 11" in r.output


def test_index_out_of_range(run, data_root):
    _one_line_error(run("arch", "15625", data=data_root), "out of range")


def test_unknown_space(run):
    _one_line_error(run("arch", ARCH_11, "--space", "darts"), "unknown search space")


def test_corrupt_table(run, tmp_path):
    (tmp_path / "nats-tss").mkdir()
    (tmp_path / "nats-tss" / "tss_test_accuracy.csv").write_text("index,arch\n0,garbage\n")
    r = run("arch", "11", data=tmp_path)
    assert r.exit_code == 2 and "tss_test_accuracy.csv" in r.output and "Traceback" not in r.output


def test_debug_shows_the_exception(run):
    r = run("--debug", "arch", "|bad|")
    assert r.exit_code != 0 and r.exception is not None and not isinstance(r.exception, SystemExit)


def test_info_lists_found_data(run, data_root):
    r = run("info", data=data_root)
    assert r.exit_code == 0, r.output
    assert "cifar10-subset.npz" in r.output
    assert "tss_test_accuracy.csv" in r.output
    assert "NATS-sss-v1_0-50262-simple" in r.output


def test_info_without_data(run):
    r = run("info")
    assert r.exit_code == 0 and "missing" in r.output and "ZCNAS_DATA" in r.output


def test_download_refuses_imagenet16(run, tmp_path):
    r = run("data", "download", "ImageNet16-120", "--data", str(tmp_path))
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_dataset_filter_and_unknown_dataset(run):
    r = run("arch", ARCH_11, "--dataset", "cifar100")
    assert r.exit_code == 0 and "cifar100" in r.output and "ImageNet16-120" not in r.output
    _one_line_error(run("arch", ARCH_11, "--dataset", "mnist"), "unknown dataset 'mnist'")
