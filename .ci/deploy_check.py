#!/usr/bin/env python3
"""Checks the deployment files in deploy/ against the schemas and against the tandem binary.

Run by .ci/deploy-check (which installs the Python packages into a venv under target/). Checks:

* deploy/compose.yaml against the Compose specification's JSON schema (the copy that the PyPI
  package check-jsonschema ships, so no network is needed);
* every resource file of deploy/k8s/ with `kubernetes-validate --strict`, and the kustomization
  rendered by the small renderer below (resources, namespace, images: the fields these
  kustomizations use; any other field is refused rather than ignored);
* every `tandem` invocation (compose commands, the init scripts, k8s args): the subcommand
  exists (`tandem ... --help`), each flag is in its help, each value is one it accepts;
* every TANDEM_* variable names a configuration key of its role (the lists in
  crates/cli/src/config.rs) or a flag's variable, and the real loader accepts the whole set
  (`tandem migrate <role>` on a scratch SQLite database with the service's variables);
* ports: listen addresses against published ports, health checks, probes (the kubelet's gRPC
  probe only on a health port), Services, the NetworkPolicy, node endpoints and scrape targets;
* deploy/grpc-service-config.json: the shape of a gRPC service config, and every method its
  retry policy names exists in proto/ (or is the standard health service's);
* paths: certificate paths against the volumes and the files the init script mints or the
  Secret items mounted, bind-mount sources, the Dockerfile's COPY sources and .dockerignore.

Every problem is printed as `file: problem`; the exit status is 1 when there is any.
"""

from __future__ import annotations

import argparse
import copy
import fnmatch
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "Dockerfile"
CONFIG_RS = ROOT / "crates/cli/src/config.rs"
LIB_RS = ROOT / "crates/cli/src/lib.rs"
SERVICE_CONFIG = DEPLOY / "grpc-service-config.json"
PROTO = ROOT / "proto"


def dummy(name: str) -> str:
    """A stand-in for a value from deploy/.env or a Secret: long enough for every secret's
    minimum length, not a number (figment would read digits as one), and different per name
    (a node's pseudonym secret must differ from the federation key)."""
    return f"deploy-check-{name}-0123456789abcdef0123456789abcdef"


errors: list[str] = []
checked: dict[str, int] = {}


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def fail(where: Path | str, problem: str) -> None:
    errors.append(f"{rel(where) if isinstance(where, Path) else where}: {problem}")


def count(what: str) -> None:
    checked[what] = checked.get(what, 0) + 1


# --- configuration keys ---------------------------------------------------------------------


def config_keys() -> dict[str, set[str]]:
    text = CONFIG_RS.read_text()
    keys = {}
    for role, const in (("node", "NODE_KEYS"), ("broker", "BROKER_KEYS")):
        m = re.search(rf"const {const}: &\[&str\] = &\[(.*?)\];", text, re.S)
        if not m:
            fail(CONFIG_RS, f"cannot find {const}")
            keys[role] = set()
            continue
        keys[role] = set(re.findall(r'"([a-z_]+)"', m.group(1)))
    return keys


def flag_variables() -> set[str]:
    """TANDEM_* variables that clap reads for flags (e.g. TANDEM_LOG_FORMAT), not config keys."""
    return set(re.findall(r'env = "(TANDEM_[A-Z0-9_]+)"', LIB_RS.read_text()))


# --- the tandem binary -----------------------------------------------------------------------


class Tandem:
    def __init__(self, binary: Path):
        self.binary = binary
        self.helps: dict[tuple[str, ...], str | None] = {}

    def help(self, chain: tuple[str, ...]) -> str | None:
        if chain not in self.helps:
            out = subprocess.run(
                [str(self.binary), *chain, "--help"],
                capture_output=True,
                text=True,
                env={"PATH": os.environ.get("PATH", "")},
            )
            self.helps[chain] = out.stdout if out.returncode == 0 else None
        return self.helps[chain]

    @staticmethod
    def subcommands(help_text: str) -> set[str]:
        m = re.search(r"^Commands:\n(.*?)(?:\n\n|\Z)", help_text, re.S | re.M)
        if not m:
            return set()
        return {line.split()[0] for line in m.group(1).splitlines() if line.strip()}

    @staticmethod
    def possible_values(help_line: str) -> set[str] | None:
        m = re.search(r"\[possible values: ([^\]]+)\]", help_line)
        return {v.strip() for v in m.group(1).split(",")} if m else None

    def check(self, where: Path | str, args: list[str]) -> tuple[str, ...]:
        """Checks one invocation; returns its subcommand chain."""
        count("tandem invocations")
        chain: tuple[str, ...] = ()
        rest = list(args)
        help_text = self.help(chain)
        if help_text is None:
            fail(where, f"`{self.binary} --help` failed")
            return chain
        while rest and not rest[0].startswith("-"):
            subs = self.subcommands(help_text)
            if not subs:
                break
            if rest[0] not in subs:
                fail(where, f"`tandem {' '.join(chain + (rest[0],))}`: no such subcommand")
                return chain
            chain += (rest.pop(0),)
            help_text = self.help(chain)
            if help_text is None:
                fail(where, f"`tandem {' '.join(chain)} --help` failed")
                return chain
        lines = help_text.splitlines()
        positional = [line for line in lines if re.match(r"^\s+<[A-Z_]+>", line)]
        i = 0
        n_positional = 0
        while i < len(rest):
            token = rest[i]
            if token.startswith("--"):
                name = token.split("=", 1)[0]
                line = next((l for l in lines if re.match(rf"^\s+(-\w, )?{re.escape(name)}\b", l)), None)
                if line is None:
                    fail(where, f"`tandem {' '.join(chain)}` has no flag {name}")
                    i += 1
                    continue
                takes_value = re.search(rf"{re.escape(name)} <", line) is not None
                if takes_value and "=" not in token:
                    i += 1
                    value = rest[i] if i < len(rest) else None
                    allowed = self.possible_values(line)
                    if value is None:
                        fail(where, f"`tandem {' '.join(chain)} {name}` needs a value")
                    elif allowed and "$" not in value and value not in allowed:
                        fail(where, f"`tandem {' '.join(chain)} {name} {value}`: not one of {sorted(allowed)}")
            else:
                if n_positional < len(positional):
                    allowed = self.possible_values(positional[n_positional])
                    if allowed and "$" not in token and token not in allowed:
                        fail(where, f"`tandem {' '.join(chain)} {token}`: not one of {sorted(allowed)}")
                else:
                    fail(where, f"`tandem {' '.join(chain)}`: unexpected argument {token!r}")
                n_positional += 1
            i += 1
        return chain

    def load(self, where: Path | str, role: str, env: dict[str, str]) -> None:
        """Runs the real configuration loader on `env` (migrating a scratch SQLite database)."""
        count("configurations loaded by tandem")
        with tempfile.TemporaryDirectory() as tmp:
            run_env = {k: v for k, v in env.items() if k.startswith("TANDEM_")}
            run_env["TANDEM_DATABASE_URL"] = f"sqlite://{tmp}/check.sqlite?mode=rwc"
            run_env["TANDEM_LOG_FORMAT"] = "text"
            run_env["PATH"] = os.environ.get("PATH", "")
            run_env["RUST_LOG"] = "error"
            out = subprocess.run(
                [str(self.binary), "migrate", role],
                capture_output=True,
                text=True,
                env=run_env,
                timeout=60,
            )
            if out.returncode != 0:
                fail(where, f"tandem refuses the {role} configuration: {out.stderr.strip()}")


# --- environment variables -------------------------------------------------------------------


def check_env_names(where: str, role: str, env: dict[str, str], keys, flags) -> None:
    for name in env:
        if not name.startswith("TANDEM_"):
            continue
        count("TANDEM_* variables")
        if name in flags:
            continue
        path = name[len("TANDEM_"):].lower().split("__")
        if path[0] not in keys[role]:
            fail(where, f"{name} is not a {role} configuration key ({path[0]!r} is not in crates/cli/src/config.rs)")


def port_of(address: str) -> int | None:
    m = re.search(r":(\d+)$", address)
    return int(m.group(1)) if m else None


LISTEN_DEFAULTS = {
    "broker": {"TANDEM_LISTEN": "127.0.0.1:7000"},
    "node": {"TANDEM_LISTEN": "127.0.0.1:7001", "TANDEM_ADMIN_LISTEN": "127.0.0.1:7002"},
}
LISTEN_VARS = ("TANDEM_LISTEN", "TANDEM_ADMIN_LISTEN", "TANDEM_DASHBOARD_LISTEN", "TANDEM_HEALTH_LISTEN")


def listen_ports(where: str, role: str, env: dict[str, str]) -> dict[str, int]:
    """The ports a server listens on, by variable; a container must listen beyond loopback."""
    ports = {}
    for var in LISTEN_VARS:
        address = env.get(var, LISTEN_DEFAULTS[role].get(var))
        if address is None:
            continue
        if address.startswith("127.") or address.startswith("[::1]"):
            fail(where, f"{var} is {address}: a container must listen on 0.0.0.0 to be reachable")
        port = port_of(address)
        if port is None:
            fail(where, f"{var} {address!r} has no port")
        else:
            ports[var] = port
    return ports


def parse_nodes(value: str) -> list[dict[str, str]]:
    """The `nodes` entries of TANDEM_NODES (figment's `[{k="v", ...}, ...]` syntax)."""
    return [dict(re.findall(r'(\w+)\s*=\s*"([^"]*)"', entry)) for entry in re.findall(r"\{([^}]*)\}", value)]


def split_endpoint(endpoint: str) -> tuple[str, str, int | None]:
    m = re.match(r"^(\w+)://([^:/]+):(\d+)/?$", endpoint)
    if not m:
        return "", endpoint, None
    return m.group(1), m.group(2), int(m.group(3))


# --- compose -----------------------------------------------------------------------------------


INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$\$")


def interpolate(value):
    if isinstance(value, str):
        def sub(m):
            if m.group(0) == "$$":
                return "$"
            op, arg = m.group(2), m.group(3)
            if op in (":-", "-"):
                return arg
            return dummy(m.group(1))
        return INTERPOLATION.sub(sub, value)
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    return value


def env_map(environment) -> dict[str, str]:
    if environment is None:
        return {}
    if isinstance(environment, list):
        out = {}
        for item in environment:
            name, _, value = str(item).partition("=")
            out[name] = value
        return out
    return {str(k): "" if v is None else str(v) for k, v in environment.items()}


def volume_mounts(service: dict) -> list[tuple[str, str, bool]]:
    """(source, target, is_named_volume) of a service's volumes in short or long syntax."""
    mounts = []
    for v in service.get("volumes", []) or []:
        if isinstance(v, str):
            parts = v.split(":")
            source, target = parts[0], parts[1] if len(parts) > 1 else parts[0]
        else:
            source, target = v.get("source", ""), v.get("target", "")
        named = not (source.startswith(".") or source.startswith("/"))
        mounts.append((source, target, named))
    for t in service.get("tmpfs", []) or []:
        mounts.append(("tmpfs", str(t).split(":")[0], False))
    return mounts


def locate(path: str, mounts: list[tuple[str, str, bool]]) -> tuple[str, str] | None:
    """(source, path inside it) of the longest mount that holds `path`."""
    best = None
    for source, target, _named in mounts:
        target = target.rstrip("/")
        if path == target or path.startswith(target + "/"):
            if best is None or len(target) > len(best[1]):
                best = (source, target)
    if best is None:
        return None
    return best[0], path[len(best[1]):].lstrip("/")


class Script:
    """The `tandem` invocations of a busybox sh script, with its variables and loops expanded."""

    def __init__(self, path: Path):
        self.path = path
        self.text = path.read_text()
        self.invocations: list[list[str]] = []
        variables: dict[str, str] = {}
        loop: tuple[str, list[str]] | None = None
        body: list[str] = []
        for raw in self.text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            m = re.match(r"^(\w+)=(\S+)$", line)
            if m and loop is None:
                variables[m.group(1)] = m.group(2).strip('"')
                continue
            m = re.match(r"^for (\w+) in (.*); do$", line)
            if m:
                loop = (m.group(1), m.group(2).split())
                body = []
                continue
            if line == "done" and loop is not None:
                for value in loop[1]:
                    for b in body:
                        self._add(b, {**variables, loop[0]: value})
                loop = None
                continue
            if loop is not None:
                body.append(line)
            else:
                self._add(line, variables)

    def _add(self, line: str, variables: dict[str, str]) -> None:
        m = re.search(r"(?:^|\|\||&&|;)\s*tandem\s+(.*)$", line)
        if not m:
            return
        command = re.split(r"\s[0-9]?>", m.group(1))[0]
        def expand(t):
            return re.sub(r"\$\{?(\w+)\}?", lambda v: variables.get(v.group(1), v.group(0)), t)
        self.invocations.append([expand(t) for t in shlex.split(command)])

    def minted(self) -> set[str]:
        """Absolute paths of the files `tandem certs` writes."""
        files = set()
        for args in self.invocations:
            opts = dict(zip(args[2::2], args[3::2])) if len(args) > 2 else {}
            if args[:2] == ["certs", "init"]:
                files |= {f"{opts.get('--dir')}/ca.pem", f"{opts.get('--dir')}/ca-key.pem"}
            if args[:2] == ["certs", "issue"]:
                d, n = opts.get("--dir"), opts.get("--name")
                files |= {f"{d}/{n}.pem", f"{d}/{n}-key.pem"}
        return files


def is_tandem_service(service: dict) -> bool:
    image = str(service.get("image", ""))
    build = service.get("build") or {}
    dockerfile = build.get("dockerfile", "") if isinstance(build, dict) else ""
    return image.split("/")[-1].split(":")[0] == "tandem" or dockerfile.endswith("deploy/Dockerfile")


def role_of(chain: tuple[str, ...], args: list[str]) -> str | None:
    if chain[:1] in (("broker",), ("node",)):
        return chain[0]
    if chain[:1] == ("migrate",):
        rest = [a for a in args[1:] if not a.startswith("-")]
        return rest[0] if rest and rest[0] in ("broker", "node") else None
    if chain[:1] == ("keys",):
        return "broker"
    return None


def check_compose(tandem: Tandem, keys, flags) -> None:
    doc = interpolate(yaml.safe_load(COMPOSE.read_text()))
    services: dict[str, dict] = doc.get("services", {})
    volumes = set((doc.get("volumes") or {}).keys())
    where = lambda name: f"{rel(COMPOSE)}: service {name}"  # noqa: E731

    # Build: the Dockerfile and its target.
    stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", DOCKERFILE.read_text(), re.M | re.I))
    for name, service in services.items():
        build = service.get("build")
        if isinstance(build, dict):
            context = (COMPOSE.parent / build.get("context", ".")).resolve()
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            if not dockerfile.is_file():
                fail(where(name), f"build.dockerfile {rel(dockerfile)} does not exist")
            if build.get("target") and build["target"] not in stages:
                fail(where(name), f"build.target {build['target']!r} is not a stage of {rel(DOCKERFILE)}")
        for source, target, named in volume_mounts(service):
            count("compose mounts")
            if source == "tmpfs":
                continue
            if named and source not in volumes:
                fail(where(name), f"volume {source!r} is not declared under volumes:")
            if not named and not (COMPOSE.parent / source).exists():
                fail(where(name), f"bind mount source {source} does not exist")
        for dep in (service.get("depends_on") or {}):
            if dep not in services:
                fail(where(name), f"depends_on {dep!r}: no such service")

    # Scripts and what they mint.
    scripts: dict[str, Script] = {}
    minted: set[tuple[str, str]] = set()
    for name, service in services.items():
        if not is_tandem_service(service):
            continue
        entrypoint = service.get("entrypoint") or []
        if entrypoint:
            script_path = next((a for a in entrypoint if a.endswith(".sh")), None)
            if script_path is None:
                fail(where(name), f"entrypoint {entrypoint} is neither tandem nor a script")
                continue
            host = next((s for s, t, n in volume_mounts(service) if t == script_path and not n), None)
            if host is None:
                fail(where(name), f"entrypoint script {script_path} is not bind-mounted")
                continue
            script = Script(COMPOSE.parent / host)
            scripts[name] = script
            for path in script.minted():
                spot = locate(path, volume_mounts(service))
                if spot is None:
                    fail(where(name), f"{rel(script.path)} writes {path} outside every volume")
                else:
                    minted.add(spot)

    nodes_by_id: dict[str, tuple[str, dict[str, str]]] = {}
    servers: dict[str, tuple[str, dict[str, str], dict[str, int]]] = {}
    for name, service in services.items():
        if not is_tandem_service(service):
            continue
        env = env_map(service.get("environment"))
        invocations = scripts[name].invocations if name in scripts else [list(service.get("command") or [])]
        for args in invocations:
            chain = tandem.check(where(name), args)
            role = role_of(chain, args)
            if role is None:
                continue
            check_env_names(where(name), role, env, keys, flags)
            tandem.load(where(name), role, env)
            if chain[:1] == ("migrate",):
                continue
            # Certificates (the servers and `tandem keys` load them): in a mounted volume,
            # minted by the init script.
            for var, value in env.items():
                if re.match(r"^TANDEM_\w+__(CERT|KEY|CA)$", var):
                    count("certificate paths")
                    spot = locate(value, volume_mounts(service))
                    if spot is None:
                        fail(where(name), f"{var}={value} is in no volume of the service")
                    elif spot not in minted:
                        fail(where(name), f"{var}={value}: no init script writes {spot[1]} into volume {spot[0]}")
            if chain[:1] != (role,):
                continue
            ports = listen_ports(where(name), role, env)
            servers[name] = (role, env, ports)
            if role == "node":
                nodes_by_id[env.get("TANDEM_NODE_ID", "")] = (name, env)
            # Published ports and the health check reach a port the server listens on.
            for mapping in service.get("ports", []) or []:
                count("compose ports")
                target = int(str(mapping).split(":")[-1].split("/")[0]) if not isinstance(mapping, dict) else int(mapping["target"])
                if target not in ports.values():
                    fail(where(name), f"publishes container port {target}, but listens on {sorted(ports.values())}")
            test_args = list((service.get("healthcheck") or {}).get("test", []))
            test = " ".join(test_args)
            for port in re.findall(r"127\.0\.0\.1[: ](\d+)", test):
                count("compose health checks")
                if int(port) not in ports.values():
                    fail(where(name), f"health check probes port {port}, but the server listens on {sorted(ports.values())}")
            # A health check that runs tandem: the invocation exists, and `tandem health` asks
            # the health port (the only plain-text gRPC port).
            if len(test_args) > 1 and test_args[0] == "CMD" and Path(test_args[1]).name == "tandem":
                health_chain = tandem.check(f"{where(name)} healthcheck", test_args[2:])
                if health_chain == ("health",):
                    addr = next((a for f, a in zip(test_args, test_args[1:]) if f == "--addr"), "")
                    if port_of(addr) != ports.get("TANDEM_HEALTH_LISTEN"):
                        fail(where(name), f"healthcheck `tandem health --addr {addr}` is not the health port (TANDEM_HEALTH_LISTEN)")

    # The broker's node endpoints name node services, their NodeService port and node ids.
    for name, (role, env, _ports) in servers.items():
        if role != "broker":
            continue
        for entry in parse_nodes(env.get("TANDEM_NODES", "")):
            count("node endpoints")
            scheme, host, port = split_endpoint(entry.get("endpoint", ""))
            node = nodes_by_id.get(entry.get("id", ""))
            if node is None:
                fail(where(name), f"TANDEM_NODES: no node service has TANDEM_NODE_ID={entry.get('id')}")
                continue
            if host != node[0]:
                fail(where(name), f"TANDEM_NODES: node {entry['id']} is service {node[0]}, not {host}")
            if port != servers[node[0]][2].get("TANDEM_LISTEN"):
                fail(where(name), f"TANDEM_NODES: {entry['endpoint']} is not {node[0]}'s NodeService port")
            if scheme != ("https" if "TANDEM_TLS__CERT" in env else "http"):
                fail(where(name), f"TANDEM_NODES: {entry['endpoint']} must be https:// with [tls]")
    # The OTLP endpoint is the collector of this file, on a port it receives on.
    for name, service in services.items():
        endpoint = env_map(service.get("environment")).get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if endpoint:
            count("otlp endpoints")
            _s, host, port = split_endpoint(endpoint)
            if host not in services:
                fail(where(name), f"OTEL_EXPORTER_OTLP_ENDPOINT {endpoint}: no service {host}")
            elif port not in collector_ports():
                fail(where(name), f"OTEL_EXPORTER_OTLP_ENDPOINT {endpoint}: the collector receives on {sorted(collector_ports())}")

    check_prometheus(services, servers, scripts)


def collector_ports() -> set[int]:
    config = yaml.safe_load((DEPLOY / "otel-collector.yaml").read_text())
    ports = set()
    for protocol in (config.get("receivers", {}).get("otlp", {}).get("protocols") or {}).values():
        port = port_of(str((protocol or {}).get("endpoint", "")))
        if port:
            ports.add(port)
    return ports


def check_collector() -> None:
    path = DEPLOY / "otel-collector.yaml"
    config = yaml.safe_load(path.read_text())
    defined = {kind: set((config.get(kind) or {}).keys()) for kind in ("receivers", "processors", "exporters", "connectors", "extensions")}
    service = config.get("service") or {}
    for ext in service.get("extensions", []):
        if ext not in defined["extensions"]:
            fail(path, f"service.extensions: {ext} is not defined")
    for name, pipeline in (service.get("pipelines") or {}).items():
        count("collector pipelines")
        for kind, allowed in (("receivers", defined["receivers"] | defined["connectors"]),
                              ("processors", defined["processors"]),
                              ("exporters", defined["exporters"] | defined["connectors"])):
            for component in pipeline.get(kind, []):
                if component not in allowed:
                    fail(path, f"pipeline {name}: {kind} {component} is not defined")


def check_prometheus(services, servers, scripts) -> None:
    path = None
    prometheus = services.get("prometheus")
    if prometheus is None:
        fail(COMPOSE, "no prometheus service")
        return
    mounts = volume_mounts(prometheus)
    config_mount = next((s for s, t, n in mounts if t == "/etc/prometheus/prometheus.yml"), None)
    if config_mount is None:
        fail(COMPOSE, "service prometheus: no /etc/prometheus/prometheus.yml mounted")
        return
    path = (COMPOSE.parent / config_mount).resolve()
    config = yaml.safe_load(path.read_text())
    for job in config.get("scrape_configs", []):
        for static in job.get("static_configs", []):
            for target in static.get("targets", []):
                count("scrape targets")
                host, _, port = target.rpartition(":")
                if host not in services:
                    fail(path, f"job {job['job_name']}: target {target}: no such compose service")
                elif host in servers and int(port) != servers[host][2].get("TANDEM_DASHBOARD_LISTEN"):
                    fail(path, f"job {job['job_name']}: target {target} is not {host}'s dashboard port")
                elif host == "otel-collector":
                    exporter = yaml.safe_load((DEPLOY / "otel-collector.yaml").read_text())["exporters"].get("prometheus", {})
                    if port_of(str(exporter.get("endpoint", ""))) != int(port):
                        fail(path, f"job {job['job_name']}: the collector's prometheus exporter is not on {port}")
        tls = job.get("tls_config") or {}
        auth = job.get("authorization") or {}
        for file in (tls.get("ca_file"), auth.get("credentials_file")):
            if not file:
                continue
            count("prometheus files")
            spot = locate(file, mounts)
            if spot is None:
                fail(path, f"job {job['job_name']}: {file} is in no volume of service prometheus")
                continue
            volume, inside = spot
            writers = [name for name, script in scripts.items()
                       if any(s == volume for s, _t, _n in volume_mounts(services[name]))
                       and re.search(rf"/{re.escape(inside)}\"?(\s|$)", script.text)]
            if not writers:
                fail(path, f"job {job['job_name']}: no init script writes {inside} into volume {volume}")


# --- kubernetes ------------------------------------------------------------------------------

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"}
SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "images"}


def render(directory: Path) -> list[tuple[Path, dict]]:
    """Renders a kustomization: (source file, resource) pairs."""
    path = directory / "kustomization.yaml"
    kustomization = yaml.safe_load(path.read_text())
    unsupported = set(kustomization) - SUPPORTED
    if unsupported:
        fail(path, f"fields {sorted(unsupported)} are not understood by .ci/deploy_check.py; extend its renderer")
    out: list[tuple[Path, dict]] = []
    for entry in kustomization.get("resources", []):
        target = directory / entry
        if target.is_dir():
            out += render(target)
        elif target.is_file():
            out += [(target, doc) for doc in yaml.safe_load_all(target.read_text()) if doc]
        else:
            fail(path, f"resource {entry} does not exist")
    for image in kustomization.get("images", []):
        for _src, doc in out:
            for container in containers(doc):
                name, _, _tag = container.get("image", "").partition(":")
                if name == image["name"]:
                    container["_original_image"] = container.get("_original_image", name)
                    container["image"] = f"{image.get('newName', name)}:{image.get('newTag', 'latest')}"
    if "namespace" in kustomization:
        for _src, doc in out:
            if doc.get("kind") not in CLUSTER_SCOPED:
                doc.setdefault("metadata", {})["namespace"] = kustomization["namespace"]
    return out


def pod_spec(doc: dict) -> dict | None:
    if doc.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return doc["spec"]["template"]["spec"]
    return None


def containers(doc: dict) -> list[dict]:
    spec = pod_spec(doc)
    return (spec.get("initContainers", []) + spec.get("containers", [])) if spec else []


def matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_k8s(tandem: Tandem, keys, flags, validator: Path) -> None:
    files = sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")
    out = subprocess.run([str(validator), "--strict", "--quiet", *map(str, files)], capture_output=True, text=True)
    count("kubernetes-validate runs")
    if out.returncode != 0:
        for line in (out.stdout + out.stderr).strip().splitlines():
            fail(K8S, f"kubernetes-validate --strict: {line}")
    resources = render(K8S)
    rendered = ROOT / "target/deploy-check/k8s-rendered.yaml"
    rendered.parent.mkdir(parents=True, exist_ok=True)
    clean = copy.deepcopy([doc for _s, doc in resources])
    for doc in clean:
        for container in containers(doc):
            container.pop("_original_image", None)
    rendered.write_text(yaml.safe_dump_all(clean, sort_keys=False))
    out = subprocess.run([str(validator), "--strict", "--quiet", str(rendered)], capture_output=True, text=True)
    if out.returncode != 0:
        for line in (out.stdout + out.stderr).strip().splitlines():
            fail(rendered, f"kubernetes-validate --strict (rendered kustomization): {line}")
    rendered_files = {src for src, _ in resources}
    for f in files:
        if f not in rendered_files:
            fail(f, "is not listed in any kustomization's resources")

    by_kind: dict[str, list[tuple[Path, dict]]] = {}
    for src, doc in resources:
        by_kind.setdefault(doc["kind"], []).append((src, doc))
        if doc["kind"] == "Secret":
            fail(src, f"Secret {doc['metadata']['name']}: secrets are created in the cluster, never committed")
    configmaps = {doc["metadata"]["name"]: doc.get("data", {}) for _s, doc in by_kind.get("ConfigMap", [])}

    workloads = [(src, doc) for src, doc in resources if pod_spec(doc)]
    server_pods: dict[str, dict] = {}
    for src, doc in workloads:
        spec = pod_spec(doc)
        labels = doc["spec"]["template"]["metadata"].get("labels", {})
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in containers(doc):
            where = f"{rel(src)}: {doc['kind']} {doc['metadata']['name']}, container {container['name']}"
            if container.get("_original_image", container.get("image", "")).split("/")[-1].split(":")[0] != "tandem":
                continue
            env: dict[str, str] = {}
            for source in container.get("envFrom", []):
                name = (source.get("configMapRef") or {}).get("name")
                if name is not None:
                    if name not in configmaps:
                        fail(where, f"envFrom ConfigMap {name} is not in the kustomization")
                    env.update(configmaps.get(name, {}))
            for var in container.get("env", []):
                if "value" in var:
                    env[var["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), ""), str(var["value"]))
                else:
                    secret = (var.get("valueFrom") or {}).get("secretKeyRef") or {}
                    env[var["name"]] = dummy(secret.get("key", var["name"]))
                    ref = (var.get("valueFrom") or {}).get("configMapKeyRef")
                    if ref and ref["key"] not in configmaps.get(ref["name"], {}):
                        fail(where, f"{var['name']}: ConfigMap {ref['name']} has no key {ref['key']}")
            args = list(container.get("command", [])[1:] if container.get("command") else []) + list(container.get("args", []))
            chain = tandem.check(where, args)
            role = role_of(chain, args)
            if role is None:
                continue
            check_env_names(where, role, env, keys, flags)
            tandem.load(where, role, env)
            if chain[:1] != (role,):
                continue
            # Ports: declared = listened; probes use declared names.
            ports = listen_ports(where, role, env)
            declared = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
            count("container ports")
            if set(declared.values()) != set(ports.values()):
                fail(where, f"containerPorts {sorted(declared.values())} differ from the listen ports {sorted(ports.values())}")
            for probe_kind in ("readinessProbe", "livenessProbe", "startupProbe"):
                probe = container.get(probe_kind)
                if not probe:
                    continue
                count("probes")
                handler = probe.get("httpGet") or probe.get("tcpSocket") or probe.get("grpc") or {}
                port = handler.get("port")
                number = declared.get(port) if isinstance(port, str) else port
                if number is None or number not in ports.values():
                    fail(where, f"{probe_kind} port {port!r} is not a port the server listens on")
                if "httpGet" in probe:
                    if number != ports.get("TANDEM_DASHBOARD_LISTEN"):
                        fail(where, f"{probe_kind}: only the broker's dashboard port serves HTTP (/healthz)")
                    scheme = probe["httpGet"].get("scheme", "HTTP")
                    if ("TANDEM_API_TLS__CERT" in env) != (scheme == "HTTPS"):
                        fail(where, f"{probe_kind}: scheme {scheme} does not match [api_tls]")
                if "grpc" in probe:
                    if not isinstance(probe["grpc"].get("port"), int):
                        fail(where, f"{probe_kind}: a gRPC probe's port must be a number, not a name")
                    elif number != ports.get("TANDEM_HEALTH_LISTEN"):
                        fail(where, f"{probe_kind}: the kubelet's gRPC probe speaks plain text; only the health port (TANDEM_HEALTH_LISTEN) does, every other Tandem port is TLS")
            # Certificate paths: a mounted Secret's item.
            mounts = {m["mountPath"].rstrip("/"): m["name"] for m in container.get("volumeMounts", [])}
            for var, value in env.items():
                if not re.match(r"^TANDEM_\w+__(CERT|KEY|CA)$", var):
                    continue
                count("certificate paths")
                directory, _, file = value.rpartition("/")
                volume = volumes.get(mounts.get(directory, ""))
                if volume is None:
                    fail(where, f"{var}={value}: no volume is mounted at {directory}")
                    continue
                secret = volume.get("secret")
                if secret is None:
                    fail(where, f"{var}={value}: volume {volume['name']} is not a Secret")
                    continue
                items = [i["path"] for i in secret.get("items", [])]
                if file not in items:
                    fail(where, f"{var}={value}: Secret {secret['secretName']} mounts no item {file} (items: {items})")
            if doc["kind"] == "Deployment":
                server_pods[doc["metadata"]["name"]] = {
                    "role": role, "labels": labels, "env": env, "ports": ports, "declared": declared, "src": src,
                }

    # Services, the PodDisruptionBudget and the NetworkPolicy select the right pods and ports.
    services = {}
    for src, doc in by_kind.get("Service", []):
        selector = doc["spec"].get("selector", {})
        pods = [p for p in server_pods.values() if matches(selector, p["labels"])]
        where = f"{rel(src)}: Service {doc['metadata']['name']}"
        if not pods:
            fail(where, f"selector {selector} matches no Deployment's pods")
            continue
        services[doc["metadata"]["name"]] = (doc, pods[0])
        for port in doc["spec"]["ports"]:
            count("service ports")
            target = port.get("targetPort", port["port"])
            if (target not in pods[0]["declared"]) if isinstance(target, str) else (target not in pods[0]["declared"].values()):
                fail(where, f"port {port.get('name')}: targetPort {target!r} is not a container port")
    for src, doc in by_kind.get("PodDisruptionBudget", []):
        count("disruption budgets")
        selector = doc["spec"]["selector"].get("matchLabels", {})
        if not any(matches(selector, p["labels"]) for p in server_pods.values()):
            fail(src, f"PodDisruptionBudget {doc['metadata']['name']}: selector {selector} matches no pods")
    brokers = [p for p in server_pods.values() if p["role"] == "broker"]
    for src, doc in by_kind.get("NetworkPolicy", []):
        count("network policies")
        where = f"{rel(src)}: NetworkPolicy {doc['metadata']['name']}"
        selected = [p for p in server_pods.values() if matches(doc["spec"]["podSelector"].get("matchLabels", {}), p["labels"])]
        if not selected:
            fail(where, "podSelector matches no pods")
            continue
        for pod in selected:
            if pod["role"] != "node":
                continue
            node_port = pod["ports"]["TANDEM_LISTEN"]
            rules = [r for r in doc["spec"].get("ingress", [])
                     if any((pod["declared"].get(p.get("port")) if isinstance(p.get("port"), str) else p.get("port")) == node_port
                            for p in r.get("ports", []))]
            if not rules:
                fail(where, f"no ingress rule for NodeService (port {node_port}): nobody, not even the broker, may call it")
            for rule in rules:
                for peer in rule.get("from", []):
                    labels = (peer.get("podSelector") or {}).get("matchLabels")
                    if "ipBlock" in peer:
                        continue
                    if not labels or not any(matches(labels, b["labels"]) for b in brokers):
                        fail(where, f"NodeService (port {node_port}) admits {peer}, which is not the broker")
            for rule in doc["spec"].get("ingress", []):
                if not rule.get("ports"):
                    fail(where, "an ingress rule without ports admits its peers to NodeService too")
    # The broker's node endpoints are node Services on their NodeService port.
    for broker in brokers:
        for entry in parse_nodes(broker["env"].get("TANDEM_NODES", "")):
            count("node endpoints")
            where = f"{rel(broker['src'])}: TANDEM_NODES"
            _scheme, host, port = split_endpoint(entry.get("endpoint", ""))
            service = services.get(host.split(".")[0])
            if service is None:
                fail(where, f"{entry.get('endpoint')}: no Service {host.split('.')[0]}")
                continue
            doc, pod = service
            spec_port = next((p for p in doc["spec"]["ports"] if p["port"] == port), None)
            target = spec_port and spec_port.get("targetPort", port)
            target = pod["declared"].get(target) if isinstance(target, str) else target
            if pod["role"] != "node" or target != pod["ports"].get("TANDEM_LISTEN"):
                fail(where, f"{entry.get('endpoint')} does not reach a node's NodeService port")
            elif entry.get("id") != pod["env"].get("TANDEM_NODE_ID"):
                fail(where, f"{entry.get('endpoint')} is node {pod['env'].get('TANDEM_NODE_ID')}, not {entry.get('id')}")


# --- Dockerfile --------------------------------------------------------------------------------


def dockerignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        hit = any(fnmatch.fnmatch("/".join(parts[: i + 1]), pattern) for i in range(len(parts)))
        if hit:
            ignored = not negate
    return ignored


def check_dockerfile() -> None:
    text = DOCKERFILE.read_text()
    ignore_file = ROOT / ".dockerignore"
    patterns = [l.strip() for l in ignore_file.read_text().splitlines() if l.strip() and not l.startswith("#")] if ignore_file.exists() else []
    for line in text.splitlines():
        m = re.match(r"^COPY\s+(?!--from)(?:--\S+\s+)*(.+)$", line)
        if not m:
            continue
        sources = m.group(1).split()[:-1]
        for source in sources:
            count("Dockerfile COPY sources")
            if not (ROOT / source).exists():
                fail(DOCKERFILE, f"COPY {source}: no such file in the repository (the context is its root)")
            elif dockerignored(source.rstrip("/"), patterns):
                fail(DOCKERFILE, f"COPY {source}: excluded by .dockerignore")
    bins = re.findall(r"--bin (\S+)", text)
    for entry in re.findall(r'^ENTRYPOINT \["([^"]+)"', text, re.M):
        count("Dockerfile entrypoints")
        if Path(entry).name not in bins:
            fail(DOCKERFILE, f"ENTRYPOINT {entry} is not the binary it builds ({bins})")
        if not re.search(rf"\S+ {re.escape(entry)}\b", text):
            fail(DOCKERFILE, f"ENTRYPOINT {entry}: nothing copies the binary there")
    if not re.search(r"^USER \d+:\d+$", text, re.M):
        fail(DOCKERFILE, "no numeric non-root USER (Kubernetes' runAsNonRoot needs a number)")


# --- the gRPC service config ------------------------------------------------------------------

# Services every server serves besides those of proto/, with their methods.
STANDARD_SERVICES = {"grpc.health.v1.Health": {"Check", "Watch"}}
CODES = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
    "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
}
DURATION = re.compile(r"^\d+(\.\d+)?s$")


def proto_methods() -> dict[str, set[str]]:
    """Every service of proto/ (full name) with its methods."""
    services: dict[str, set[str]] = {}
    for path in sorted(PROTO.rglob("*.proto")):
        text = re.sub(r"//[^\n]*", "", path.read_text())
        package = re.search(r"^\s*package\s+([\w.]+)\s*;", text, re.M)
        prefix = f"{package.group(1)}." if package else ""
        for m in re.finditer(r"\bservice\s+(\w+)\s*\{(.*?)\n\}", text, re.S):
            services[prefix + m.group(1)] = set(re.findall(r"\brpc\s+(\w+)\s*\(", m.group(2)))
    return services


def check_service_config() -> None:
    import json

    path = SERVICE_CONFIG
    count("service configs")
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        fail(path, f"not JSON: {e}")
        return
    known = {**proto_methods(), **STANDARD_SERVICES}
    unknown_keys = set(config) - {"methodConfig", "retryThrottling", "loadBalancingConfig"}
    if unknown_keys:
        fail(path, f"keys {sorted(unknown_keys)} are not gRPC service config keys this check knows")
    seen: set[tuple[str, str]] = set()
    for i, method_config in enumerate(config.get("methodConfig", [])):
        where = f"methodConfig[{i}]"
        names = method_config.get("name") or []
        if not names:
            fail(path, f"{where}: no name")
        for name in names:
            count("service config methods")
            service, method = name.get("service", ""), name.get("method", "")
            if set(name) - {"service", "method"}:
                fail(path, f"{where}: name {name}: only service and method")
            if service not in known:
                fail(path, f"{where}: service {service!r} is in no .proto under proto/")
            elif not method:
                fail(path, f"{where}: {service}: name every method; a whole service retries calls that are not idempotent")
            elif method not in known[service]:
                fail(path, f"{where}: {service} has no method {method!r}")
            if (service, method) in seen:
                fail(path, f"{where}: {service}/{method} is named twice")
            seen.add((service, method))
        retry = method_config.get("retryPolicy")
        if retry is None:
            continue
        attempts = retry.get("maxAttempts")
        if not isinstance(attempts, int) or not 2 <= attempts <= 5:
            fail(path, f"{where}.retryPolicy.maxAttempts: {attempts!r} is not 2 to 5 (gRPC caps it at 5)")
        for key in ("initialBackoff", "maxBackoff"):
            if not DURATION.match(str(retry.get(key, ""))):
                fail(path, f"{where}.retryPolicy.{key}: {retry.get(key)!r} is not a duration such as \"0.2s\"")
        multiplier = retry.get("backoffMultiplier")
        if not isinstance(multiplier, (int, float)) or multiplier <= 0:
            fail(path, f"{where}.retryPolicy.backoffMultiplier: {multiplier!r} is not a positive number")
        codes = retry.get("retryableStatusCodes") or []
        if not codes:
            fail(path, f"{where}.retryPolicy.retryableStatusCodes: none")
        for code in codes:
            if code not in CODES:
                fail(path, f"{where}.retryPolicy.retryableStatusCodes: {code!r} is not a gRPC code name")
        extra = set(retry) - {"maxAttempts", "initialBackoff", "maxBackoff", "backoffMultiplier", "retryableStatusCodes"}
        if extra:
            fail(path, f"{where}.retryPolicy: unknown keys {sorted(extra)}")
    throttling = config.get("retryThrottling")
    if throttling is not None:
        tokens, ratio = throttling.get("maxTokens"), throttling.get("tokenRatio")
        if not isinstance(tokens, (int, float)) or not 0 < tokens <= 1000:
            fail(path, f"retryThrottling.maxTokens: {tokens!r} is not in (0, 1000]")
        if not isinstance(ratio, (int, float)) or ratio <= 0:
            fail(path, f"retryThrottling.tokenRatio: {ratio!r} is not positive")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tandem", type=Path, required=True, help="the tandem binary")
    parser.add_argument("--venv-bin", type=Path, required=True, help="bin/ of the venv with the validators")
    options = parser.parse_args()

    out = subprocess.run(
        [str(options.venv_bin / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True, text=True,
    )
    count("compose files validated")
    if out.returncode != 0:
        for line in (out.stdout + out.stderr).strip().splitlines():
            fail(COMPOSE, f"compose specification: {line.strip()}")

    tandem = Tandem(options.tandem)
    keys = config_keys()
    flags = flag_variables()
    check_dockerfile()
    check_compose(tandem, keys, flags)
    check_collector()
    check_service_config()
    check_k8s(tandem, keys, flags, options.venv_bin / "kubernetes-validate")

    for what, n in sorted(checked.items()):
        print(f"  {n:3} {what}")
    sys.stdout.flush()
    if errors:
        print(f"deploy check: {len(errors)} problem(s):", file=sys.stderr)
        for e in errors:
            print(f"  {e}", file=sys.stderr)
        return 1
    print("deploy check: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
