#!/usr/bin/env python3
"""bench/serve: strata serve vs devpi-server (pip) and verdaccio (npm), and the remote tier.

Everything runs on loopback against one strata-upstream (50 ms latency, 10 MB/s per
connection). Cases:
  pip_local     pip install --no-index --find-links DIR (the files already on disk): the floor
  pip_strata    pip install --index-url <strata serve>/simple, cold (fresh store) then warm
  pip_devpi     pip install --index-url <devpi-server mirror>, cold (fresh server dir) then warm
  npm_local     npm ci with every `resolved` rewritten to file: tarballs on disk: the floor
  npm_strata    npm ci --registry <strata serve>/npm/ (--replace-registry-host=always), cold, warm
  npm_verdaccio npm ci --registry <verdaccio 5> whose uplink is a static packument directory
                (tarball URLs on the upstream), cold, warm
  remote_*      `strata fetch` on a "second machine" (fresh store): from the registry (remote
                tier filled by a first machine) vs from the throttled upstream; and the floor,
                `curl --parallel` of the same blobs from the registry (remote_curl_floor)
Clients never keep a cache of their own (pip --no-cache-dir, a fresh npm cache per run), so
"warm" means the server side is warm. Checks (fail the run): installs succeed, every
package is installed, the upstream counters (strata downloads each file once cold, nothing
warm; the second machine asks the upstream for nothing). Times are reported, never asserted.
"""

import argparse
import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


def rand(n, seed):
    out = bytearray()
    h = hashlib.sha256(str(seed).encode()).digest()
    while len(out) < n:
        h = hashlib.sha256(h).digest()
        out += h * 64
    return bytes(out[:n])


class Procs:
    def __init__(self):
        self.procs = []

    def start(self, args, **kw):
        p = subprocess.Popen(args, start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()

    def stop_all(self):
        for p in self.procs:
            self.stop(p)


def run(args, **kw):
    t = time.perf_counter()
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        log(f"FAILED: {' '.join(map(str, args))}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        raise SystemExit(1)
    return dt, r


def make_data(d, n_wheels, wheel_size, n_npm, npm_size):
    up = os.path.join(d, "up")
    os.makedirs(os.path.join(up, "pypi"), exist_ok=True)
    wheels = []
    for i in range(n_wheels):
        name = f"bench_pkg_{i}"
        file = f"{name}-1.0-py3-none-any.whl"
        path = os.path.join(up, "pypi", file)
        if not os.path.exists(path):
            dist = f"{name}-1.0.dist-info"
            files = {
                f"{name}/__init__.py": b"X = 1\n",
                f"{name}/data.bin": rand(wheel_size, i),
                f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode(),
                f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
            }
            record = []
            with zipfile.ZipFile(path, "w") as z:
                for p, data in files.items():
                    z.writestr(zipfile.ZipInfo(p, (2020, 1, 1, 0, 0, 0)), data)
                    h = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                    record.append(f"{p},sha256={h},{len(data)}")
                record.append(f"{dist}/RECORD,,")
                z.writestr(zipfile.ZipInfo(f"{dist}/RECORD", (2020, 1, 1, 0, 0, 0)), "\n".join(record) + "\n")
        data = open(path, "rb").read()
        wheels.append((name, file, data))
    npm = []
    for i in range(n_npm):
        name = f"bench-mod-{i}"
        file = f"{name}-1.0.0.tgz"
        dirp = os.path.join(up, name, "-")
        os.makedirs(dirp, exist_ok=True)
        path = os.path.join(dirp, file)
        if not os.path.exists(path):
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as t:
                for p, data in {
                    "package/package.json": json.dumps({"name": name, "version": "1.0.0", "main": "index.js"}).encode(),
                    "package/index.js": b"module.exports = 1;\n",
                    "package/data.bin": rand(npm_size, 100000 + i),
                }.items():
                    info = tarfile.TarInfo(p)
                    info.size = len(data)
                    info.mtime = 1577836800
                    t.addfile(info, io.BytesIO(data))
            with open(path, "wb") as f:
                f.write(gzip.compress(buf.getvalue(), mtime=0))
        npm.append((name, file, open(path, "rb").read()))
    return wheels, npm


def sri(data):
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def up_stats(up_url):
    return json.load(urllib.request.urlopen(up_url + "/_upstream/stats"))


def up_reset(up_url):
    urllib.request.urlopen(urllib.request.Request(up_url + "/_upstream/reset", method="POST")).read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--devpi", default="")
    ap.add_argument("--verdaccio", default="")
    ap.add_argument("--registry", default="docker-registry")
    ap.add_argument("--cases", default="pip,npm,devpi,verdaccio,remote",
                    help="comma-separated groups to run (pip, npm, devpi, verdaccio, remote)")
    a = ap.parse_args()
    cases = set(a.cases.split(","))
    n_wheels, wheel_size, n_npm, npm_size = (5, 20_000, 10, 5_000) if a.tiny else (50, 200_000, 300, 20_000)
    reps = 1 if a.tiny else a.reps
    work = a.work
    os.makedirs(work, exist_ok=True)
    data = os.path.join(work, "data")
    wheels, npm = make_data(data, n_wheels, wheel_size, n_npm, npm_size)
    strata = os.path.join(a.bin, "strata")
    procs = Procs()
    results = {}

    def rec(case, dt):
        results.setdefault(case, []).append(dt)
        log(f"  {case}: {dt:.2f}s")

    try:
        up_port = free_port()
        procs.start([os.path.join(a.bin, "strata-upstream"), "--root", os.path.join(data, "up"),
                     "--addr", f"127.0.0.1:{up_port}", "--latency-ms", "50", "--rate", "10MB"],
                    stdout=subprocess.DEVNULL)
        wait_port(up_port)
        up = f"http://127.0.0.1:{up_port}"
        run_dir = os.path.join(work, "run")
        shutil.rmtree(run_dir, ignore_errors=True)
        os.makedirs(run_dir)

        # Lockfiles.
        pylock = os.path.join(run_dir, "pylock.toml")
        with open(pylock, "w") as f:
            f.write('lock-version = "1.0"\ncreated-by = "bench"\n')
            for name, file, b in wheels:
                f.write(f'\n[[packages]]\nname = "{name}"\nversion = "1.0"\nwheels = [{{ url = "{up}/pypi/{file}", size = {len(b)}, hashes = {{ sha256 = "{hashlib.sha256(b).hexdigest()}" }} }}]\n')
        app = os.path.join(run_dir, "app")
        os.makedirs(app)
        deps = {name: "^1.0.0" for name, _, _ in npm}
        pkgs = {"": {"name": "app", "version": "1.0.0", "dependencies": deps}}
        for name, file, b in npm:
            pkgs[f"node_modules/{name}"] = {"version": "1.0.0", "resolved": f"{up}/{name}/-/{file}", "integrity": sri(b)}
        lock = {"name": "app", "version": "1.0.0", "lockfileVersion": 3, "requires": True, "packages": pkgs}
        json.dump({"name": "app", "version": "1.0.0", "dependencies": deps}, open(os.path.join(app, "package.json"), "w"))
        json.dump(lock, open(os.path.join(app, "package-lock.json"), "w"), indent=2)
        local_app = os.path.join(run_dir, "app-local")
        os.makedirs(local_app)
        shutil.copy(os.path.join(app, "package.json"), local_app)
        local_lock = json.loads(json.dumps(lock))
        for name, file, _ in npm:
            local_lock["packages"][f"node_modules/{name}"]["resolved"] = "file:" + os.path.join(data, "up", name, "-", file)
        json.dump(local_lock, open(os.path.join(local_app, "package-lock.json"), "w"), indent=2)
        names = [n for n, _, _ in wheels]

        def pip(index_args, tag):
            target = os.path.join(run_dir, f"site-{tag}")
            shutil.rmtree(target, ignore_errors=True)
            dt, _ = run([sys.executable, "-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check",
                         "--no-input", "--target", target, *index_args, *names])
            missing = [n for n in names if not os.path.isdir(os.path.join(target, n))]
            if missing:
                raise SystemExit(f"{tag}: not installed: {missing[:3]}")
            return dt

        def npm_ci(app_dir, registry_args, tag):
            shutil.rmtree(os.path.join(app_dir, "node_modules"), ignore_errors=True)
            cache = os.path.join(run_dir, f"npm-cache-{tag}")
            shutil.rmtree(cache, ignore_errors=True)
            dt, _ = run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--cache", cache, *registry_args], cwd=app_dir)
            if not os.path.isdir(os.path.join(app_dir, "node_modules", npm[-1][0])):
                raise SystemExit(f"{tag}: not installed")
            return dt

        def strata_serve(tag):
            cache = os.path.join(run_dir, f"cache-{tag}")
            shutil.rmtree(cache, ignore_errors=True)
            port = free_port()
            p = procs.start([strata, "serve", "-q", "--http", f"127.0.0.1:{port}", "--cache-dir", cache, pylock,
                             os.path.join(app, "package-lock.json")], stdout=subprocess.DEVNULL)
            wait_port(port)
            return p, f"http://127.0.0.1:{port}"

        def pip_cases():
            rec("pip_local", pip(["--no-index", "--find-links", os.path.join(data, "up", "pypi")], "local"))
            up_reset(up)
            p, url = strata_serve("pip")
            rec("pip_strata_cold", pip(["--index-url", url + "/simple"], "strata"))
            s = up_stats(up)
            if s["total_requests"] != n_wheels:
                raise SystemExit(f"strata cold: {s['total_requests']} upstream requests, want {n_wheels}")
            rec("pip_strata_warm", pip(["--index-url", url + "/simple"], "strata"))
            if up_stats(up)["total_requests"] != n_wheels:
                raise SystemExit("strata warm asked the upstream")
            procs.stop(p)

        def npm_cases():
            rec("npm_local", npm_ci(local_app, [], "local"))
            up_reset(up)
            p, url = strata_serve("npm")
            args = ["--registry", url + "/npm/", "--replace-registry-host=always"]
            rec("npm_strata_cold", npm_ci(app, args, "strata"))
            if up_stats(up)["total_requests"] != n_npm:
                raise SystemExit("strata npm cold: wrong upstream request count")
            rec("npm_strata_warm", npm_ci(app, args, "strata"))
            procs.stop(p)

        for rep in range(reps):
            log(f"rep {rep + 1}/{reps}")
            if "pip" in cases:
                pip_cases()
            if "npm" in cases:
                npm_cases()
            if a.devpi and "devpi" in cases:
                rec_devpi(a.devpi, run_dir, wheels, up, procs, pip, rec, data)
            if a.verdaccio and "verdaccio" in cases:
                rec_verdaccio(a.verdaccio, run_dir, npm, up, procs, npm_ci, app, rec, data)
            if "remote" in cases:
                remote_case(strata, run_dir, pylock, app, up, procs, rec, a.registry, n_wheels + n_npm,
                            [b for _, _, b in wheels + npm])
    finally:
        procs.stop_all()
    summary = {k: {"min": min(v), "median": sorted(v)[len(v) // 2], "runs": v} for k, v in results.items()}
    json.dump(summary, open(os.path.join(work, "results.json"), "w"), indent=2)
    print(f"{'case':<22} {'median s':>9} {'min s':>8}")
    for k, v in summary.items():
        print(f"{k:<22} {v['median']:>9.2f} {v['min']:>8.2f}")
    def ratio(x, y):
        if x in summary and y in summary:
            print(f"{x} / {y}: {summary[x]['median'] / summary[y]['median']:.2f}x")
    ratio("pip_strata_warm", "pip_local")
    ratio("npm_strata_warm", "npm_local")
    ratio("pip_devpi_cold", "pip_strata_cold")
    ratio("pip_devpi_warm", "pip_strata_warm")
    ratio("npm_verdaccio_cold", "npm_strata_cold")
    ratio("npm_verdaccio_warm", "npm_strata_warm")
    ratio("remote_from_upstream", "remote_from_registry")
    ratio("remote_curl_floor", "remote_from_registry")


def rec_devpi(devpi_bin, run_dir, wheels, up, procs, pip, rec, data):
    # A static simple index for devpi's mirror (index pages only; files come from the upstream).
    idx = os.path.join(run_dir, "devpi-index")
    for name, file, b in wheels:
        d = os.path.join(idx, "simple", name.replace("_", "-"))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "index.html"), "w") as f:
            f.write(f'<a href="{up}/pypi/{file}#sha256={hashlib.sha256(b).hexdigest()}">{file}</a>\n')
    with open(os.path.join(idx, "simple", "index.html"), "w") as f:
        for name, _, _ in wheels:
            n = name.replace("_", "-")
            f.write(f'<a href="{n}/">{n}</a>\n')
    idx_port = free_port()
    procs.start([sys.executable, "-m", "http.server", str(idx_port), "--bind", "127.0.0.1", "--directory", idx],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(idx_port)
    server_dir = os.path.join(run_dir, "devpi-server")
    shutil.rmtree(server_dir, ignore_errors=True)
    run([os.path.join(devpi_bin, "devpi-init"), "--serverdir", server_dir, "--no-root-pypi"])
    port = free_port()
    p = procs.start([os.path.join(devpi_bin, "devpi-server"), "--serverdir", server_dir, "--host", "127.0.0.1",
                     "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    client_dir = os.path.join(run_dir, "devpi-client")
    env = dict(os.environ, DEVPI_CLIENTDIR=client_dir)
    devpi = os.path.join(devpi_bin, "devpi")
    run([devpi, "use", f"http://127.0.0.1:{port}"], env=env)
    run([devpi, "login", "root", "--password", ""], env=env)
    run([devpi, "index", "-c", "root/mirror", "type=mirror", f"mirror_url=http://127.0.0.1:{idx_port}/simple/"], env=env)
    url = f"http://127.0.0.1:{port}/root/mirror/+simple/"
    rec("pip_devpi_cold", pip(["--index-url", url], "devpi"))
    rec("pip_devpi_warm", pip(["--index-url", url], "devpi"))
    procs.stop(p)


def rec_verdaccio(verdaccio_bin, run_dir, npm, up, procs, npm_ci, app, rec, data):
    meta = os.path.join(run_dir, "verdaccio-meta")
    os.makedirs(meta, exist_ok=True)
    for name, file, b in npm:
        doc = {"name": name, "dist-tags": {"latest": "1.0.0"}, "versions": {"1.0.0": {
            "name": name, "version": "1.0.0", "dist": {"tarball": f"{up}/{name}/-/{file}", "integrity": sri(b)}}}}
        json.dump(doc, open(os.path.join(meta, name), "w"))
    meta_port = free_port()
    procs.start([sys.executable, "-m", "http.server", str(meta_port), "--bind", "127.0.0.1", "--directory", meta],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(meta_port)
    vd = os.path.join(run_dir, "verdaccio")
    shutil.rmtree(vd, ignore_errors=True)
    os.makedirs(vd)
    port = free_port()
    with open(os.path.join(vd, "config.yaml"), "w") as f:
        f.write(f"storage: {vd}/storage\nuplinks:\n  up:\n    url: http://127.0.0.1:{meta_port}/\n"
                f"packages:\n  '**':\n    access: $all\n    proxy: up\n"
                f"log: {{ type: stdout, format: pretty, level: error }}\n")
    p = procs.start([verdaccio_bin, "--config", os.path.join(vd, "config.yaml"), "--listen", f"127.0.0.1:{port}"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    args = ["--registry", f"http://127.0.0.1:{port}/", "--replace-registry-host=always"]
    rec("npm_verdaccio_cold", npm_ci(app, args, "verdaccio"))
    rec("npm_verdaccio_warm", npm_ci(app, args, "verdaccio"))
    procs.stop(p)


def remote_case(strata, run_dir, pylock, app, up, procs, rec, registry_bin, count, blobs=()):
    if not shutil.which(registry_bin):
        log("SKIP remote tier: docker-registry not found")
        return
    port = free_port()
    rd = os.path.join(run_dir, "registry")
    shutil.rmtree(rd, ignore_errors=True)
    os.makedirs(rd)
    cfg = os.path.join(rd, "config.yml")
    with open(cfg, "w") as f:
        f.write(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {rd}/data\n"
                f"http:\n  addr: 127.0.0.1:{port}\n")
    p = procs.start([registry_bin, "serve", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    remote = f"oci://127.0.0.1:{port}/bench/cache"
    locks = [pylock, os.path.join(app, "package-lock.json")]

    def fetch(tag, extra):
        cache = os.path.join(run_dir, f"cache-remote-{tag}")
        out = os.path.join(run_dir, f"out-remote-{tag}")
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
        dt, _ = run([strata, "fetch", "-q", "--cache-dir", cache, "-o", out, *extra, *locks])
        return dt

    fetch("first", ["--remote", remote])  # the first machine fills the registry
    up_reset(up)
    rec("remote_from_registry", fetch("second", ["--remote", remote]))
    if shutil.which("curl") and blobs:
        # The floor: the same blobs straight from the registry, 16 at a time, no store.
        cfg = os.path.join(rd, "curl.cfg")
        with open(cfg, "w") as f:
            for b in blobs:
                f.write(f'url = "http://127.0.0.1:{port}/v2/bench/cache/blobs/sha256:{hashlib.sha256(b).hexdigest()}"\n'
                        'output = "/dev/null"\n')
        rec("remote_curl_floor", run(["curl", "-sf", "--parallel", "--parallel-max", "16", "-K", cfg])[0])
    if up_stats(up)["total_requests"] != 0:
        raise SystemExit("the second machine asked the upstream")
    rec("remote_from_upstream", fetch("plain", []))
    if up_stats(up)["total_requests"] != count:
        raise SystemExit("the plain fetch did not download everything once")
    procs.stop(p)


if __name__ == "__main__":
    main()
