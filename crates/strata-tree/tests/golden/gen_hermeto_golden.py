"""Regenerates the Hermeto reference files in this directory with Hermeto's own code.

The golden files are what Hermeto itself serialises for the artifacts of
`tests/common/mod.rs::golden_set()`: its pydantic models (`hermeto/core/models/sbom.py`,
`output.py`), its purl library (`packageurl-python`), and its npm lockfile rewrite
(`hermeto/core/package_managers/javascript/npm/resolver.py`). Nothing here is copied into
strata; the script only *runs* Hermeto to produce reference bytes.

Usage (with both sources checked out, missing third-party modules are stubbed):
    PYTHONPATH=<hermeto>:<packageurl-python>/src python3 gen_hermeto_golden.py
"""
import importlib.abc
import importlib.machinery
import json
import re
import sys
import types
from datetime import datetime, timezone
from pathlib import Path
from unittest import mock

STUB = {"pyarn", "aiohttp_retry", "semver", "aiohttp", "aiofiles", "pypi_simple", "yaml", "packaging", "git", "requests",
        "tomlkit", "tomli", "typer", "pydantic_settings", "urllib3", "tqdm", "rich", "httpx",
        "truststore", "ruamel", "defusedxml", "jinja2", "toml", "backoff"}


class _Stub(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return mock.MagicMock(name=f"{self.__name__}.{name}")


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in STUB:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec):
        m = _Stub(spec.name)
        m.__path__ = []
        return m

    def exec_module(self, m):
        pass


sys.meta_path.insert(0, _Finder())

from packageurl import PackageURL  # noqa: E402

import hermeto.core.models.sbom as sbom  # noqa: E402
from hermeto.core.models.output import (  # noqa: E402
    EnvironmentVariable, ProjectFile, RequestOutput)
from hermeto.core.models.property_semantics import PropertySet  # noqa: E402
from hermeto.core.package_managers.generic.models import LockfileArtifactUrl  # noqa: E402
from hermeto.core.package_managers.javascript.npm import project as npm_project  # noqa: E402
from hermeto.core.package_managers.javascript.npm import resolver as npm_resolver  # noqa: E402
from hermeto.core.package_managers.javascript.npm import utils as npm_utils  # noqa: E402
from hermeto.core.package_managers.javascript.npm.main import (  # noqa: E402
    _generate_component_list)
from hermeto.core.package_managers.rpm.main import Package as RpmPackage  # noqa: E402
from hermeto.core.rooted_path import RootedPath  # noqa: E402

HERE = Path(__file__).parent
BASE = "http://127.0.0.1:8080"
TS = datetime(2025, 1, 1, tzinfo=timezone.utc)
# 127.0.0.1 stands in for the npm registry in these tests.
npm_utils.is_from_npm_registry = lambda url: True
npm_project.classify_resolved_url = lambda url: "registry"
npm_resolver.classify_resolved_url = lambda url: "registry"
# Hermeto's default configuration: no npm proxy.
npm_project.get_config = lambda: types.SimpleNamespace(
    npm=types.SimpleNamespace(proxy_url=None))


def canonicalize_name(name):  # packaging.utils.canonicalize_name
    return re.sub(r"[-_.]+", "-", name).lower()


def hexfill(fill, n=32):
    return fill * n


def annotate(components, backend):
    a = sbom.create_backend_annotation(components, backend)
    a.timestamp = TS
    return [a]


outputs = []

# generic: hermeto/core/package_managers/generic/models.py LockfileArtifactUrl
out = RootedPath(HERE / "out")
g = LockfileArtifactUrl.model_validate(
    {"download_url": f"{BASE}/generic/archive.tar.gz", "checksum": "sha256:" + hexfill("41")},
    context={"output_dir": out.re_root("deps/generic")},
)
gc = [g.get_sbom_component()]
outputs.append(RequestOutput.from_obj_list(components=gc, annotations=annotate(gc, "generic")))

# npm: PackageLock + _Purlifier + _update_package_lock_with_local_paths
lock_path = RootedPath(HERE / "npm").join_within_root("package-lock.json")
lock = npm_project.PackageLock.from_file(lock_path)
comps = _generate_component_list(lock.get_sbom_components())
download_paths = {}
deps_npm = RootedPath(HERE / "out").join_within_root("deps", "npm")
for url, info in lock.get_dependencies_to_download().items():
    name = f"{info['name']}-{info['version']}.tgz".removeprefix("@").replace("/", "-")
    download_paths[url] = deps_npm.join_within_root(name)
npm_resolver._update_package_lock_with_local_paths(download_paths, lock)
pf = lock.get_project_file()
pf = ProjectFile(abspath=Path("/src/app/package-lock.json"), template=pf.template)
outputs.append(RequestOutput.from_obj_list(components=comps, project_files=[pf],
                                           annotations=annotate(comps, "npm")))

# pip: packages.py PyPIPackage._make_purl / to_component (default index: no qualifiers)
pcs = []
for name, filename in [("Typing_Extensions", "typing_extensions-4.12.2-py3-none-any.whl"),
                       ("typing-extensions", "typing_extensions-4.12.2.tar.gz")]:
    cname = canonicalize_name(name)
    pcs.append(sbom.Component(
        name=cname, version="4.12.2",
        purl=PackageURL(type="pypi", name=cname, version="4.12.2").to_string(),
        properties=PropertySet(pip_package_binary=filename.endswith(".whl")).to_properties()))
outputs.append(RequestOutput.from_obj_list(
    components=pcs,
    environment_variables=[EnvironmentVariable(name="PIP_FIND_LINKS", value="${output_dir}/deps/pip"),
                           EnvironmentVariable(name="PIP_NO_INDEX", value="true")],
    annotations=annotate(pcs, "pip")))

# rpm: rpm/main.py Package.purl / to_component (header fields as rpm -q would give them)
rcs = []
for name, epoch, ver, rel, arch, repoid, fill, src in [
    ("bash", None, "5.1.8", "9.el9", "x86_64", "ubi-9-baseos", "31", False),
    ("openssl", "1", "3.0.7", "27.el9", "x86_64", "ubi-9-baseos", "32", False),
    ("bash", None, "5.1.8", "9.el9", "x86_64", "ubi-9-baseos-source", "33", True),
    ("tzdata", None, "2024a", "1.el9", "noarch", "hermeto-abc123", "34", False),
]:
    fname = f"{name}-{ver}-{rel}.{'src' if src else arch}.rpm"
    p = RpmPackage(name=name, version=ver, release=rel, arch="src" if src else arch,
                   download_url=f"{BASE}/rpm/{fname}", epoch=epoch,
                   checksum="sha256:" + hexfill(fill),
                   repository_id=None if repoid.startswith("hermeto") else repoid)
    rcs.append(p.to_component(Path("rpms.lock.yaml")))
outputs.append(RequestOutput.from_obj_list(components=rcs, annotations=annotate(rcs, "rpm")))

total = sum(outputs, RequestOutput.empty())
(HERE / "bom.hermeto.json").write_text(
    total.generate_sbom().model_dump_json(indent=2, by_alias=True, exclude_none=True))
(HERE / "build-config.hermeto.json").write_text(
    total.build_config.model_dump_json(indent=2, exclude_none=True))
print("wrote bom.hermeto.json and build-config.hermeto.json")
