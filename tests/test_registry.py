"""The plugin registry, against real installed distributions.

Dummy plugin distributions are pip-installed once into a temporary site folder; each check
runs in a fresh interpreter with that folder on PYTHONPATH, so discovery goes through the real
``importlib.metadata`` (nothing patched).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import zcnas
from zcnas import registry
from zcnas.errors import UnknownNameError, UserError
from zcnas.proxy import Proxy, ProxyError, ProxyInfo
from zcnas.registry import PluginConflictError, PluginError, Registry

REPO = Path(zcnas.__file__).resolve().parents[1]

BUILTINS = {
    "params", "flops", "synflow", "naswot", "stable", "stable_mean", "grad_norm", "snip",
    "fisher", "grasp", "jacov", "epe_nas", "gradsign", "zico", "zen", "te_nas_ntk",
    "te_nas_lr", "meco", "swap", "az_expressivity", "az_progressivity", "az_trainability",
    "az_complexity", "vkdnw",
}

GOOD_MODULE = '''
from zcnas.proxy import Proxy, ProxyInfo

META = dict(version="1", reference="test", code="test", needs_labels=False,
            needs_images=False, input="none", bn="n/a", init="n/a")


class Good(Proxy):
    info = ProxyInfo(name="tp_good", **META)
    params = {"alpha": 1.0}

    def score(self, ctx):
        return self.alpha * 21


class WrongName(Proxy):
    info = ProxyInfo(name="something_else", **META)

    def score(self, ctx):
        return 0.0


class NotAProxy:
    pass
'''

# distribution name -> (package name, {module: source}, {entry-point name: target})
DISTS = {
    "zc-plugin-good": ("zc_plugin_good", {
        "__init__": GOOD_MODULE,
        "broken": "raise ImportError(\"simulated missing dependency 'torchfoo'\")\n",
    }, {
        "tp_good": "zc_plugin_good:Good",
        "tp_import_error": "zc_plugin_good.broken:Thing",
        "tp_wrong_name": "zc_plugin_good:WrongName",
        "tp_not_proxy": "zc_plugin_good:NotAProxy",
    }),
    "zc-plugin-dup-a": ("zc_plugin_dup_a", {"__init__": GOOD_MODULE}, {
        "tp_dup": "zc_plugin_dup_a:Good"}),
    "zc-plugin-dup-b": ("zc_plugin_dup_b", {"__init__": GOOD_MODULE}, {
        "tp_dup": "zc_plugin_dup_b:Good"}),
}


def _write_project(root: Path, dist: str, package: str, modules: dict, eps: dict) -> Path:
    proj = root / dist
    (proj / package).mkdir(parents=True)
    for mod, src in modules.items():
        (proj / package / f"{mod}.py").write_text(textwrap.dedent(src))
    entry_lines = "".join(f'{name} = "{target}"\n' for name, target in eps.items())
    (proj / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "{dist}"\nversion = "1.0"\n'
        f'[tool.setuptools]\npackages = ["{package}"]\n'
        f'[project.entry-points."zcnas.proxies"]\n{entry_lines}'
    )
    return proj


def _write_dist_info(site: Path, dist: str, package: str, modules: dict, eps: dict) -> None:
    """What an installer writes; used only when pip cannot build offline here."""
    shutil.copytree(site.parent / "projects" / dist / package, site / package)
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[zcnas.proxies]\n" + "".join(f"{n} = {t}\n" for n, t in eps.items()))
    (info / "RECORD").write_text("")
    (info / "INSTALLER").write_text("zcnas-tests\n")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("plugins")
    projects = [_write_project(root / "projects", d, *spec) for d, spec in DISTS.items()]
    target = root / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", "--disable-pip-version-check", "--target", str(target),
         *map(str, projects)], capture_output=True, text=True)
    if proc.returncode != 0:  # offline without setuptools/pip: lay out the metadata by hand
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        for dist, spec in DISTS.items():
            _write_dist_info(target, dist, *spec)
    return target


def _run(code: str, *paths: Path, raise_env: bool = False) -> dict:
    """Run ``code`` in a fresh interpreter with ``paths`` first on sys.path; its last stdout
    line is JSON."""
    env = {k: v for k, v in os.environ.items() if k != "ZCNAS_PLUGIN_RAISE"}
    env["PYTHONPATH"] = os.pathsep.join([*map(str, paths), str(REPO)])
    if raise_env:
        env["ZCNAS_PLUGIN_RAISE"] = "1"
    prelude = "import json, sys\nfrom zcnas import registry\nR = registry.PROXIES\n"
    proc = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- third-party discovery (subprocess, real metadata) ------------------------------------------


def test_listing_imports_no_plugin(site):
    out = _run("""
        names = R.names()
        entries = [e.__dict__ for e in R.entries("tp_*")]
        mods = [m for m in sys.modules
                if m.startswith(("zc_plugin", "zcnas_proxies")) or m == "torch"]
        print(json.dumps({"names": names, "entries": entries, "mods": mods,
                          "contains": "tp_good" in R}))
    """, site)
    assert out["mods"] == []
    assert {"tp_good", "tp_import_error", "tp_wrong_name", "tp_not_proxy", "tp_dup"} <= set(
        out["names"])
    assert out["names"].count("tp_dup") == 1
    good = [e for e in out["entries"] if e["name"] == "tp_good"]
    assert good == [{"name": "tp_good", "target": "zc_plugin_good:Good",
                     "dist": "zc-plugin-good", "version": "1.0"}]
    assert sorted(e["dist"] for e in out["entries"] if e["name"] == "tp_dup") == [
        "zc-plugin-dup-a", "zc-plugin-dup-b"]
    assert out["contains"] is True


def test_good_plugin_loads_and_scores(site):
    out = _run("""
        before = "zc_plugin_good" in sys.modules
        cls = registry.get_proxy("tp_good")
        proxy = registry.create_proxy("tp_good(alpha=2)")
        print(json.dumps({"before": before, "cls": cls.__module__ + ":" + cls.__name__,
                          "cached": registry.get_proxy("tp_good") is cls,
                          "score": proxy.score(None), "spec": proxy.spec(),
                          "filtered": registry.list_proxies("tp_g*")}))
    """, site)
    assert out == {"before": False, "cls": "zc_plugin_good:Good", "cached": True,
                   "score": 42.0, "spec": "tp_good(alpha=2.0)", "filtered": ["tp_good"]}


def test_broken_plugins_are_reported_and_skipped(site):
    out = _run("""
        loaded, broken = R.load_all("tp_*")
        try:
            R.get("tp_import_error")
            err = None
        except registry.PluginError as e:
            err = [type(e).__name__, str(e), type(e.__cause__).__name__]
        print(json.dumps({"loaded": sorted(loaded), "broken": [b.__dict__ for b in broken],
                          "err": err}))
    """, site)
    assert out["loaded"] == ["tp_good"]
    broken = {b["name"]: b for b in out["broken"] if b["dist"] == "zc-plugin-good"}
    assert set(broken) == {"tp_import_error", "tp_wrong_name", "tp_not_proxy"}
    for b in broken.values():
        assert b["version"] == "1.0"
    assert broken["tp_import_error"]["error"].startswith("ImportError: simulated missing")
    assert "something_else" in broken["tp_wrong_name"]["error"]
    assert "not a subclass of zcnas.proxy.Proxy" in broken["tp_not_proxy"]["error"]
    name, msg, cause = out["err"]
    assert (name, cause) == ("PluginError", "ImportError")
    assert "zc-plugin-good 1.0" in msg and "ZCNAS_PLUGIN_RAISE=1" in msg
    assert "\n" not in msg


@pytest.mark.parametrize("name, expected", [("tp_import_error", "ImportError"),
                                            ("tp_wrong_name", "ValueError"),
                                            ("tp_not_proxy", "TypeError")])
def test_plugin_raise_env_reraises_the_original(site, name, expected):
    out = _run(f"""
        caught = []
        for call in (lambda: R.get({name!r}), lambda: R.load_all({name!r})):
            try:
                call()
                caught.append(None)
            except Exception as e:
                caught.append(type(e).__name__)
        print(json.dumps(caught))
    """, site, raise_env=True)
    assert out == [expected, expected]


def test_two_distributions_claiming_one_name_conflict(site):
    out = _run("""
        try:
            R.get("tp_dup")
            err = None
        except registry.PluginConflictError as e:
            from zcnas.errors import UserError
            err = [str(e), isinstance(e, UserError)]
        loaded, broken = R.load_all("tp_dup")
        print(json.dumps({"err": err, "loaded": sorted(loaded),
                          "broken": sorted(b.dist for b in broken)}))
    """, site)
    msg, is_user_error = out["err"]
    assert is_user_error
    assert "zc-plugin-dup-a 1.0" in msg and "zc-plugin-dup-b 1.0" in msg
    assert out["loaded"] == []
    assert out["broken"] == ["zc-plugin-dup-a", "zc-plugin-dup-b"]


def test_same_distribution_twice_on_path_is_not_a_clash(site, tmp_path):
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    for item in site.iterdir():
        if item.name.startswith("zc_plugin_good"):
            shutil.copytree(item, shadow / item.name)
    out = _run("""
        print(json.dumps([e.dist for e in R.entries("tp_good")] +
                         [registry.get_proxy("tp_good").__name__]))
    """, site, shadow)
    assert out == ["zc-plugin-good", "Good"]


# --- built-ins -----------------------------------------------------------------------------------


def test_builtin_names_are_listed_through_entry_points():
    try:
        importlib.metadata.distribution("zcnas")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("zcnas is not installed as a distribution here (pip install -e .), so "
                    "its entry points cannot be seen")
    reg = Registry("zcnas.proxies", kind="proxy")  # fresh: nothing registered in-process
    assert BUILTINS <= set(reg.names())
    builtin = {e.name: e for e in reg.entries() if e.dist == "zcnas"}
    assert set(builtin) == BUILTINS
    assert all(e.target.startswith("zcnas_proxies.") for e in builtin.values())


# --- in-process behaviour ------------------------------------------------------------------------


def _fake(name: str, **extra) -> type[Proxy]:
    info = ProxyInfo(name=name, version="1", reference="r", code="c", needs_labels=False,
                     needs_images=False, input="none", bn="n/a", init="n/a")
    return type(name.title(), (Proxy,), {"info": info, "params": {"alpha": 1.0},
                                         "score": lambda self, ctx: self.alpha, **extra})


@pytest.fixture
def proxies(monkeypatch):
    """A fresh proxy registry (an entry-point group nobody declares) with two fakes."""
    reg = Registry("zcnas.tests.no_such_group", kind="proxy",
                   validate=registry.validate_proxy, list_command="zcnas proxies list")
    reg.register("fake_alpha", _fake("fake_alpha"))
    reg.register("fake_beta")(_fake("fake_beta"))
    monkeypatch.setattr(registry, "PROXIES", reg)
    return reg


def test_in_process_register_list_and_create(proxies):
    assert registry.list_proxies() == ["fake_alpha", "fake_beta"]
    assert registry.list_proxies("beta") == ["fake_beta"]
    assert [e.dist for e in proxies.entries()] == ["<in-process>", "<in-process>"]
    p = registry.create_proxy("fake_alpha(alpha=3)")
    assert p.score(None) == 3.0 and p.spec() == "fake_alpha(alpha=3.0)"
    loaded, broken = proxies.load_all()
    assert sorted(loaded) == ["fake_alpha", "fake_beta"] and broken == []
    proxies.unregister("fake_beta")
    assert registry.list_proxies() == ["fake_alpha"]


def test_register_rejects_duplicates_and_invalid(proxies):
    with pytest.raises(PluginConflictError, match="already registered"):
        proxies.register("fake_alpha", _fake("fake_alpha"))
    with pytest.raises(ValueError, match="info.name 'fake_x'"):
        proxies.register("fake_y", _fake("fake_x"))
    with pytest.raises(TypeError, match="not a subclass"):
        proxies.register("fake_z", object)
    with pytest.raises(TypeError, match="abstract"):
        proxies.register("fake_abs", type("Abs", (Proxy,), {"info": _fake("fake_abs").info}))


def test_unknown_name_names_close_matches_and_listing(proxies):
    with pytest.raises(UnknownNameError) as exc:
        registry.get_proxy("fake_alfa")
    msg = str(exc.value)
    assert "unknown proxy 'fake_alfa'" in msg and "'fake_alpha'" in msg
    assert "zcnas proxies list" in msg and "\n" not in msg
    assert isinstance(exc.value, UserError)
    with pytest.raises(UnknownNameError) as exc:
        registry.create_proxy("zzzzzz")
    assert "did you mean" not in str(exc.value)


@pytest.mark.parametrize("text, fragment", [
    ("fake alpha", "malformed proxy spec"),
    ("fake_alpha(", "unbalanced"),
    ("fake_alpha(alpha)", "malformed parameter"),
    ("fake_alpha(gamma=1)", "has no parameter 'gamma'"),
    ("fake_alpha(alpha=x)", "is not a float"),
    ("fake_alpha(alpha=nan)", "is not a finite float"),
    ("fake_alpha(alpha=inf)", "is not a finite float"),
    ("fake_alpha(alpha=true)", "is not a float"),
    ("fake_alpha,,fake_beta", "empty proxy name"),
    ("fake_alpha),fake_beta", "unbalanced"),
    ("fake_alpha,fake_alpha(alpha=1.0)", "given twice"),
])
def test_spec_errors(proxies, text, fragment):
    with pytest.raises(ProxyError, match=fragment.replace("(", r"\(")):
        registry.create_proxies(text)


@pytest.mark.parametrize("value", [2.5, True, "2", float("nan")])
def test_int_parameters_refuse_what_is_not_an_integer(value):
    from zcnas_proxies.stable import Stable

    with pytest.raises(ProxyError, match=f"n_batches={value!r} is not an integer"):
        Stable(n_batches=value)


def test_integral_floats_are_ints_and_ints_are_floats(proxies):
    from zcnas_proxies.stable import Stable

    assert Stable(n_batches=4.0).n_batches == 4 and type(Stable(n_batches=4.0).n_batches) is int
    assert registry.create_proxy("fake_alpha(alpha=2)").alpha == 2.0


def test_create_proxies_keeps_order_and_distinct_configs(proxies):
    got = registry.create_proxies("fake_beta, fake_alpha(alpha=2), fake_alpha")
    assert [p.spec() for p in got] == ["fake_beta", "fake_alpha(alpha=2.0)", "fake_alpha"]


def test_prefix_extension_point(proxies):
    seen = []
    cls = _fake("fake_alpha")

    def factory(rest):
        seen.append(rest)
        return cls

    proxies.register_prefix("mix", factory)
    # the factory gets everything after the prefix, parentheses included (nested specs)
    p = registry.create_proxy("mix:half(fake_alpha,fake_beta(x=1))")
    assert seen == ["half(fake_alpha,fake_beta(x=1))"]
    assert type(p) is cls and p.score(None) == 1.0  # a class is instantiated with defaults
    with pytest.raises(UnknownNameError, match="prefix 'nope:'"):
        registry.get_proxy("nope:x")
    with pytest.raises(PluginConflictError):
        proxies.register_prefix("mix", factory)


def test_plugin_error_is_a_user_error():
    assert issubclass(PluginError, UserError) and issubclass(PluginConflictError, PluginError)
