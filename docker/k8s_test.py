"""Checks the deploy files against the server and the image they deploy.

    k8s_test.py ATTNSERVE_BINARY [RENDERED_K8S_YAML]

Run through docker/k8s_test.sh (which renders docker/k8s with kustomize).
Without RENDERED_K8S_YAML the resources listed in docker/k8s/kustomization.yaml
are read as they are (the base has no patches, so that is the same set).

What is checked, and why it matters:
- every --flag in container args exists in `attnserve --help` (a typo or a
  removed flag makes the pod crash-loop);
- gRPC probes, containerPort, Service targetPort, compose's published port and
  EXPOSE all name the port of --address;
- the metrics port (--metrics_address) is EXPOSEd, a named containerPort, in
  the pod's prometheus.io annotations and the ServingRuntime's
  prometheus.kserve.io ones, with the path /metrics, and published by compose;
- terminationGracePeriodSeconds > preStop sleep + --drain_delay +
  --shutdown_grace (else the
  kubelet kills calls that were still being answered);
- runAsUser is non-root and is the Dockerfile's USER uid;
- --model points at a read-only volume mount; the hardening settings are on;
- the KServe port is named h2c and the InferenceService names the runtime.
Prints one line per check; exits 1 if any fails.
"""
import re
import subprocess
import sys
from pathlib import Path

import yaml

DOCKER = Path(__file__).resolve().parent

failures = []


def check(ok: bool, what: str) -> None:
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


def load_all(path: Path) -> list:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def help_flags(binary: str) -> set:
    """Flag names in `attnserve --help` (absl exits 1 after printing help)."""
    out = subprocess.run([binary, "--help"], capture_output=True, text=True,
                         timeout=30)
    flags = set(re.findall(r"^\s+--(\w+) \(", out.stdout + out.stderr, re.M))
    if not flags:
        sys.exit(f"k8s_test: no flags found in `{binary} --help`")
    return flags


def parse_args(args: list) -> dict:
    """["--a=1", "--b"] -> {"a": "1", "b": ""}; other entries are kept as-is."""
    parsed = {}
    for arg in args:
        match = re.fullmatch(r"--([\w-]+)(?:=(.*))?", str(arg))
        parsed[match.group(1) if match else str(arg)] = (
            (match.group(2) or "") if match else None)
    return parsed


def seconds(duration: str) -> float:
    """An absl duration such as 30s, 1m30s, 500ms, 1h -> seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
    parts = re.findall(r"([\d.]+)(ms|us|ns|h|m|s)", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a duration: {duration}")
    return sum(float(n) * units[u] for n, u in parts)


def address_port(args: dict) -> int:
    return int(args.get("address", "0.0.0.0:50051").rsplit(":", 1)[1])


def metrics_port(args: dict) -> int:
    """--metrics_address's port; 0 when metrics are off (the default)."""
    address = args.get("metrics_address") or ""
    return int(address.rsplit(":", 1)[1]) if address else 0


def check_metrics_annotations(where: str, annotations: dict, prefix: str,
                              port: int) -> None:
    check(port != 0, f"{where}: --metrics_address is set")
    check(str(annotations.get(f"{prefix}/port")) == str(port)
          and annotations.get(f"{prefix}/path") == "/metrics",
          f"{where}: {prefix}/port is {port}, {prefix}/path is /metrics")


def check_args(where: str, args: dict, flags: set) -> None:
    unknown = [a for a in args if a not in flags]
    check(not unknown,
          f"{where}: args use only flags of attnserve --help"
          + (f" (unknown: {', '.join(unknown)})" if unknown else ""))


def check_container_security(where: str, pod_sc: dict, sc: dict,
                             image_uid: int) -> None:
    merged = {**pod_sc, **sc}  # container settings override the pod's
    uid = merged.get("runAsUser")
    check(merged.get("runAsNonRoot") is True, f"{where}: runAsNonRoot")
    check(uid is not None and uid != 0 and uid == image_uid,
          f"{where}: runAsUser {uid} is non-root and the Dockerfile's USER "
          f"{image_uid}")
    check(sc.get("readOnlyRootFilesystem") is True,
          f"{where}: readOnlyRootFilesystem")
    check(sc.get("allowPrivilegeEscalation") is False,
          f"{where}: allowPrivilegeEscalation false")
    check(sc.get("capabilities", {}).get("drop") == ["ALL"],
          f"{where}: capabilities drop ALL")
    check(merged.get("seccompProfile", {}).get("type") == "RuntimeDefault",
          f"{where}: seccompProfile RuntimeDefault")


def check_dockerfile(flags: set) -> tuple:
    """The image's USER uid and EXPOSEd port; checks CMD agrees with them."""
    text = (DOCKER / "Dockerfile").read_text()
    user = re.search(r"^USER\s+(\d+)", text, re.M)
    expose = re.search(r"^EXPOSE\s+(\d+)((?:\s+\d+)*)", text, re.M)
    cmd = re.search(r"^CMD\s+(\[.*\])", text, re.M)
    check(bool(user and expose and cmd),
          "Dockerfile: numeric USER, EXPOSE and an exec-form CMD")
    uid, port = int(user.group(1)), int(expose.group(1))
    check(uid != 0, f"Dockerfile: USER {uid} is not root")
    cmd_args = parse_args(yaml.safe_load(cmd.group(1)))
    check_args("Dockerfile CMD", cmd_args, flags)
    check(address_port(cmd_args) == port,
          f"Dockerfile: CMD's --address port is EXPOSE {port}")
    check(metrics_port(cmd_args) != 0
          and str(metrics_port(cmd_args)) in expose.group(2).split(),
          "Dockerfile: CMD's --metrics_address port is EXPOSEd too")
    return uid, port


def check_deployment(docs: list, flags: set, uid: int) -> None:
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    deployment = by_kind["Deployment"][0]
    pod = deployment["spec"]["template"]["spec"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    container = pod["containers"][0]
    args = parse_args(container["args"])
    check_args("Deployment", args, flags)

    port = address_port(args)
    ports = {p.get("name"): p["containerPort"] for p in container["ports"]}
    check(ports.get("grpc") == port
          and list(ports.values()) == [port, metrics_port(args)],
          f"Deployment: containerPorts are --address's port {port} (grpc) "
          f"and --metrics_address's")
    check_metrics_annotations(
        "Deployment", deployment["spec"]["template"]["metadata"].get(
            "annotations", {}), "prometheus.io", metrics_port(args))
    check(deployment["spec"]["template"]["metadata"].get("annotations", {})
          .get("prometheus.io/scrape") == "true",
          "Deployment: prometheus.io/scrape is \"true\"")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        grpc = container.get(probe, {}).get("grpc", {})
        check(grpc.get("port") == port,
              f"Deployment: {probe} is grpc on port {port}")

    # Passed explicitly: the server's default could change under the manifest.
    check("shutdown_grace" in args, "Deployment: --shutdown_grace is set")
    grace = seconds(args.get("shutdown_grace") or "30s")
    check("drain_delay" in args, "Deployment: --drain_delay is set")
    drain = seconds(args.get("drain_delay") or "5s")
    pre_stop = container.get("lifecycle", {}).get("preStop", {})
    command = pre_stop.get("exec", {}).get("command", [])
    sleep = float(command[1]) if command[:1] == ["sleep"] else 0.0
    period = pod.get("terminationGracePeriodSeconds", 30)
    check(period > sleep + drain + grace,
          f"Deployment: terminationGracePeriodSeconds {period} > preStop "
          f"sleep {sleep:g} + --drain_delay {drain:g} + --shutdown_grace "
          f"{grace:g}")

    check_container_security("Deployment", pod.get("securityContext", {}),
                             container.get("securityContext", {}), uid)

    mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
    model = args.get("model", "")
    check(model in mounts and mounts[model].get("readOnly") is True,
          f"Deployment: --model={model} is a read-only volume mount")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    claim = volumes.get(mounts.get(model, {}).get("name"), {}).get(
        "persistentVolumeClaim", {}).get("claimName")
    pvcs = [p["metadata"]["name"] for p in by_kind.get("PersistentVolumeClaim", [])]
    check(claim in pvcs, f"Deployment: the model volume is the PVC {claim}")

    services = by_kind.get("Service", [])
    check(any(s["spec"].get("clusterIP") == "None" for s in services)
          and any(s["spec"].get("clusterIP") != "None" for s in services),
          "Services: a ClusterIP and a headless one")
    for s in services:
        name = s["metadata"]["name"]
        check(all(labels.get(k) == v for k, v in s["spec"]["selector"].items()),
              f"Service {name}: selector matches the pods")
        for p in s["spec"]["ports"]:
            target = p.get("targetPort", p["port"])
            check(ports.get(target, target) == port,
                  f"Service {name}: targetPort {target} is port {port}")
    # The metrics port stays off the Services: Prometheus scrapes pods.

    hpa = by_kind["HorizontalPodAutoscaler"][0]
    check(hpa["apiVersion"] == "autoscaling/v2"
          and hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
          and any(m["resource"]["name"] == "cpu" for m in hpa["spec"]["metrics"]),
          "HPA: autoscaling/v2 on the Deployment's CPU")
    pdb = by_kind["PodDisruptionBudget"][0]
    check(all(labels.get(k) == v
              for k, v in pdb["spec"]["selector"]["matchLabels"].items()),
          "PodDisruptionBudget: selector matches the pods")


def check_kserve(flags: set, uid: int) -> None:
    docs = [d for f in sorted((DOCKER / "kserve").glob("*.yaml"))
            if f.name != "kustomization.yaml" for d in load_all(f)]
    runtime = next(d for d in docs if d["kind"] == "ServingRuntime")
    service = next(d for d in docs if d["kind"] == "InferenceService")
    spec = runtime["spec"]
    container = spec["containers"][0]
    args = parse_args(container["args"])
    check_args("ServingRuntime", args, flags)
    check(args.get("model") == "/mnt/models",
          "ServingRuntime: --model=/mnt/models (where KServe puts the model)")
    ports = container["ports"]
    check(len(ports) == 1 and ports[0]["name"] == "h2c"
          and ports[0]["containerPort"] == address_port(args),
          "ServingRuntime: one port, named h2c, --address's port")
    check_metrics_annotations("ServingRuntime", spec.get("annotations", {}),
                              "prometheus.kserve.io", metrics_port(args))
    check(set(spec["protocolVersions"]) <= {"v1", "v2", "grpc-v1", "grpc-v2"},
          "ServingRuntime: protocolVersions are KServe's")
    check("grpc-v2" in spec["protocolVersions"],
          "ServingRuntime: lists grpc-v2 (the Open Inference Protocol)")
    check_container_security("ServingRuntime", {},
                             container.get("securityContext", {}), uid)
    model = service["spec"]["predictor"]["model"]
    formats = [f["name"] for f in spec["supportedModelFormats"]]
    check(model.get("runtime") == runtime["metadata"]["name"]
          and model["modelFormat"]["name"] in formats
          and bool(model.get("storageUri")),
          "InferenceService: uses the runtime, one of its formats, a storageUri")


def check_compose(flags: set, image_port: int) -> None:
    service = yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]["attnserve"]
    args = parse_args(service["command"])
    check_args("compose", args, flags)
    published = [str(p).rsplit(":", 1)[-1] for p in service["ports"]]
    check(published == [str(address_port(args)), str(metrics_port(args))],
          "compose: the published container ports are --address's and "
          "--metrics_address's")
    check(args.get("address") is None or address_port(args) == image_port,
          f"compose: serves on the image's EXPOSEd port {image_port}")
    # rsplit: the host side may be ${MODEL_DIR:-default}, with a colon.
    check(any(v.rsplit(":", 2)[1:] == [args.get("model"), "ro"]
              for v in service["volumes"]),
          "compose: --model is a read-only volume")


def main() -> int:
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    flags = help_flags(sys.argv[1])
    if len(sys.argv) == 3:
        k8s_docs = load_all(Path(sys.argv[2]))
    else:
        kustomization = yaml.safe_load((DOCKER / "k8s/kustomization.yaml").read_text())
        k8s_docs = [d for r in kustomization["resources"]
                    for d in load_all(DOCKER / "k8s" / r)]
    uid, port = check_dockerfile(flags)
    check_deployment(k8s_docs, flags, uid)
    check_kserve(flags, uid)
    check_compose(flags, port)
    if failures:
        print(f"k8s_test: {len(failures)} check(s) failed")
        return 1
    print("k8s_test: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
