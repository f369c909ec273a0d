#!/usr/bin/env bash
# Offline validation of deploy/kubernetes (no cluster, no network but PyPI):
#
#   1. every document of every manifest against the Kubernetes OpenAPI schemas
#      (kubernetes-validate, strict: unknown fields fail) for the oldest and the
#      newest Kubernetes version the manifests support; an apiVersion/kind with
#      no schema fails too (the tool itself only warns);
#   2. KEDA's ScaledObject and TriggerAuthentication against JSON Schemas made
#      from KEDA's CRDs (tests/deploy/schemas/, README there), plus the rules
#      the CRDs express in CEL or KEDA's webhook enforces;
#   3. consistency checks no schema can express: the configuration contract
#      (every PANOPTES__* variable each process must get), Secret/ConfigMap
#      keys that exist, selectors that select, targets that exist, the
#      security context, probes, resources, SSE shutdown timing, and that
#      kustomization.yaml lists every manifest but the example Secret;
#   4. the same schema and contract checks on `kubectl kustomize` output,
#      where kubectl (with kustomize v5) is installed;
#   5. self-checks: broken copies of the manifests (a string replica count, an
#      unknown field, a wrong KEDA field, a missing variable...) must each be
#      rejected with the expected message, or the gate itself is broken.
#
# Usage: bash tests/deploy/kubernetes.sh
# Env:   K8S_VERSIONS (default "1.30.0 1.37.0": 1.30 is the oldest with the
#        preStop sleep action the gateway uses; 1.37 the newest shipped).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../.ci/lib.sh"

KUBERNETES_VALIDATE_VERSION=1.37.0
JSONSCHEMA_VERSION=4.26.0
K8S_VERSIONS="${K8S_VERSIONS:-1.30.0 1.37.0}"
MANIFESTS="$ROOT/deploy/kubernetes"
SCHEMAS="$ROOT/tests/deploy/schemas"
START=$(date +%s)

export_config_reference
log "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION and jsonschema $JSONSCHEMA_VERSION into .tools/venv"
ensure_venv "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "jsonschema==$JSONSCHEMA_VERSION"
PY="$TOOLS/venv/bin/python"

# check DIR [RENDERED_FILE]: validate the manifests in DIR (or, with
# RENDERED_FILE, that kustomize output, with DIR's example Secret for the key
# checks). Prints one line per document and every problem; exits 1 on any.
check() {
  "$PY" - "$SCHEMAS" "$K8S_VERSIONS" "$@" <<'PY'
import functools, ipaddress, json, os, re, sys

import jsonschema
import referencing
import yaml
import kubernetes_validate.utils as kv

schemas_dir, versions, manifest_dir = sys.argv[1], sys.argv[2].split(), sys.argv[3]
rendered = sys.argv[4] if len(sys.argv) > 4 else None
errors = []
passed = 0


def fail(where, msg):
    errors.append(f"{where}: {msg}")


# -- loading ---------------------------------------------------------------

class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; kubectl's strict field
    validation rejects them, and so does this."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def load(path):
    try:
        with open(path) as f:
            return [d for d in yaml.load_all(f, Loader=UniqueKeyLoader) if d is not None]
    except yaml.YAMLError as e:
        fail(os.path.basename(path), f"not valid YAML: {e}")
        return []


files = sorted(f for f in os.listdir(manifest_dir) if f.endswith((".yaml", ".yml")))
docs = []          # (where, doc) of the manifests checked
kustomization = None
example_secrets = {}
for name in files:
    path = os.path.join(manifest_dir, name)
    for i, doc in enumerate(load(path)):
        where = f"{name}#{i}"
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            fail(where, "not a Kubernetes object (no apiVersion/kind)")
            continue
        if doc["kind"] == "Kustomization":
            kustomization = (where, doc)
        elif name.endswith(".example.yaml") and doc["kind"] == "Secret":
            example_secrets[(doc.get("metadata") or {}).get("name")] = doc
            if not rendered:
                docs.append((where, doc))
        elif not rendered:
            docs.append((where, doc))
if rendered:
    for i, doc in enumerate(load(rendered)):
        docs.append((f"rendered#{i} {doc.get('kind')}/{doc.get('metadata', {}).get('name')}", doc))


# -- schemas ----------------------------------------------------------------

# kubernetes-validate reads and parses the 1.2 MB definitions file once per
# document; the same file for every document here.
kv.schema_contents = functools.lru_cache(maxsize=None)(kv.schema_contents)


def k8s_defs(version):
    return kv.schema_contents(f"kubernetes-json-schema/v{version}-local-strict/_definitions.json", version)


def keda_schema(kind):
    path = os.path.join(schemas_dir, f"{kind.lower()}-keda-v1alpha1.json")
    with open(path) as f:
        return json.load(f)


def validate_schema(where, doc):
    global passed
    api, kind = doc["apiVersion"], doc["kind"]
    if api == "keda.sh/v1alpha1":
        try:
            schema = keda_schema(kind)
        except FileNotFoundError:
            fail(where, f"no schema for {api} {kind} in tests/deploy/schemas")
            return
        problems = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc),
                          key=lambda e: list(e.absolute_path))
        for e in problems:
            fail(where, f"KEDA {kind} schema: {'.'.join(map(str, e.absolute_path))}: {e.message}")
        # The CRD types metadata only as "object": check it as the API server
        # does, against ObjectMeta.
        for version in versions:
            defs = k8s_defs(version)
            registry = referencing.Registry().with_resource(
                defs["$id"], referencing.Resource.from_contents(defs))
            meta = {"$ref": defs["$id"] + "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
            for e in jsonschema.Draft202012Validator(meta, registry=registry).iter_errors(doc.get("metadata", {})):
                problems.append(e)
                fail(where, f"metadata ({version}): {'.'.join(map(str, e.absolute_path))}: {e.message}")
        if not problems:
            print(f"ok    {where}: {kind} valid against KEDA v2.20.2 schema")
            passed += 1
        return
    for version in versions:
        try:
            got = kv.validate(doc, version, strict=True)
            print(f"ok    {where}: {kind} valid against Kubernetes {got} (strict)")
            passed += 1
        except kv.ValidationError as e:
            fail(where, f"Kubernetes {e.version} (strict): {'.'.join(map(str, e.path))}: {e.message}")
        except kv.SchemaNotFoundError as e:
            fail(where, e.message)
        except kv.VersionNotSupportedError as e:
            fail(where, e.message)


for where, doc in docs:
    validate_schema(where, doc)


def semantic():
    """Checks across objects; the schemas have run, so most shapes are right."""
    # -- helpers ----------------------------------------------------------------

    def by_kind(kind):
        return [(w, d) for w, d in docs if d["kind"] == kind]


    def name_of(doc):
        return doc["metadata"]["name"]


    def selects(selector, labels):
        """A LabelSelector (matchLabels + matchExpressions) against labels."""
        if selector is None:
            return False
        for k, v in (selector.get("matchLabels") or {}).items():
            if labels.get(k) != v:
                return False
        for expr in selector.get("matchExpressions") or []:
            k, op, vals = expr["key"], expr["operator"], expr.get("values") or []
            if op == "In" and labels.get(k) not in vals:
                return False
            if op == "NotIn" and labels.get(k) in vals:
                return False
            if op == "Exists" and k not in labels:
                return False
            if op == "DoesNotExist" and k in labels:
                return False
        return True


    def image_name(image):
        """Repository name without registry and tag: registry/x/panoptes-worker:1 -> panoptes-worker."""
        return image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]


    deployments = {name_of(d): (w, d) for w, d in by_kind("Deployment")}
    namespaces = [name_of(d) for _, d in by_kind("Namespace")]
    configmaps = {name_of(d): d.get("data") or {} for _, d in by_kind("ConfigMap")}
    secrets = {n: {**(d.get("data") or {}), **(d.get("stringData") or {})} for n, d in example_secrets.items()}
    service_accounts = {name_of(d) for _, d in by_kind("ServiceAccount")}


    # -- namespace ----------------------------------------------------------------

    CLUSTER_SCOPED = {"Namespace"}
    if len(namespaces) != 1:
        fail("manifests", f"expected exactly one Namespace, found {namespaces}")
    else:
        for where, doc in docs:
            if doc["kind"] not in CLUSTER_SCOPED and doc["metadata"].get("namespace") != namespaces[0]:
                fail(where, f"metadata.namespace is {doc['metadata'].get('namespace')!r}, not {namespaces[0]!r}")


    # -- the configuration contract ----------------------------------------------

    SECRET = object()
    ANY = object()
    # Which variables each process must get, and which are secrets: what the
    # binaries say (`panoptes config-reference`). The values these manifests fix:
    sys.path.insert(0, os.path.join(os.path.dirname(schemas_dir)))
    import contract as _contract
    REQUIRED = _contract.required()
    FIXED = {
        "PANOPTES__BLOBS__BACKEND": "s3",
        "PANOPTES__LOG__FORMAT": "json",
        "PANOPTES__DATA__DIR": "/var/lib/panoptes",
        "PANOPTES__SERVER__LISTEN": "0.0.0.0:8080",
        "PANOPTES__WORKER__METRICS_LISTEN": "0.0.0.0:9464",
        "PANOPTES__DETECTOR__EXECUTION_PROVIDER": "cuda",
        "PANOPTES__DETECTOR__MODEL_PATH": "/opt/panoptes/models/nanodet-m-416.onnx",
        "PANOPTES__DETECTOR__ORT_LIBRARY": "/opt/panoptes/lib/libonnxruntime.so.1.31.1",
    }
    ROLES = set(REQUIRED)
    IMAGES = {"gateway": "panoptes-gateway", "detect": "panoptes-worker-gpu"}


    def resolve_env(where, container):
        """NAME -> value (literal or ConfigMap value) or SECRET; checks each reference."""
        out = {}
        for e in container.get("env") or []:
            n = e["name"]
            if n in out:
                fail(where, f"env {n} is set twice")
            if "value" in e:
                out[n] = e["value"]
                continue
            src = e.get("valueFrom") or {}
            if "secretKeyRef" in src:
                ref = src["secretKeyRef"]
                if ref["name"] not in secrets:
                    fail(where, f"env {n}: Secret {ref['name']!r} is not the documented example Secret")
                elif ref["key"] not in secrets[ref["name"]]:
                    fail(where, f"env {n}: key {ref['key']!r} missing from the example Secret {ref['name']!r}")
                out[n] = SECRET
            elif "configMapKeyRef" in src:
                ref = src["configMapKeyRef"]
                data = configmaps.get(ref["name"])
                if data is None:
                    fail(where, f"env {n}: no ConfigMap {ref['name']!r}")
                elif ref["key"] not in data:
                    fail(where, f"env {n}: key {ref['key']!r} missing from ConfigMap {ref['name']!r}")
                else:
                    out[n] = data[ref["key"]]
            else:
                out[n] = ANY
        for ef in container.get("envFrom") or []:
            if "configMapRef" in ef:
                for k, v in configmaps.get(ef["configMapRef"]["name"], {}).items():
                    out.setdefault(ef.get("prefix", "") + k, v)
        return out


    def port_of(listen):
        return int(listen.rsplit(":", 1)[1])


    seen_roles = {}
    for name, (where, dep) in deployments.items():
        pod = dep["spec"]["template"]["spec"]
        tmpl_labels = dep["spec"]["template"]["metadata"].get("labels") or {}
        if not selects(dep["spec"]["selector"], tmpl_labels):
            fail(where, "spec.selector does not select the pod template's labels")
        containers = pod["containers"]
        if len(containers) != 1:
            fail(where, "expected one container")
        c = containers[0]
        img = image_name(c["image"])
        args = c.get("args") or []
        if img == "panoptes-gateway":
            role = "gateway"
        elif len(args) == 3 and args[:2] == ["worker", "--role"]:
            role = args[2]
        else:
            fail(where, f"cannot tell the role: image {c['image']!r}, args {args!r}")
            continue
        if role not in ROLES:
            fail(where, f"unknown role {role!r}")
            continue
        if role in seen_roles:
            fail(where, f"role {role} also deployed by {seen_roles[role]}")
        seen_roles[role] = where
        if tmpl_labels.get("app.kubernetes.io/component") != role:
            fail(where, f"pod label app.kubernetes.io/component should be {role!r}")
        want_img = IMAGES.get(role, "panoptes-worker")
        if img != want_img:
            fail(where, f"role {role} runs image {img!r}, expected {want_img!r}")

        env = resolve_env(where, c)
        contract = {
            var: SECRET if is_secret else FIXED.get(var, ANY)
            for var, is_secret in REQUIRED[role].items()
        }
        for var, want in contract.items():
            if var not in env:
                fail(where, f"role {role}: contract variable {var} is missing")
            elif want is SECRET and env[var] is not SECRET:
                fail(where, f"role {role}: {var} must come from a Secret (secretKeyRef)")
            elif want is not SECRET and env[var] is SECRET:
                fail(where, f"role {role}: {var} is not a secret; it belongs in the ConfigMap")
            elif want is ANY and (env[var] is SECRET or env[var] in ("", None)):
                fail(where, f"role {role}: {var} is empty")
            elif isinstance(want, str) and env[var] != want:
                fail(where, f"role {role}: {var} is {env[var]!r}, expected {want!r}")
        for var in env:
            if var.startswith("PANOPTES__") and not re.fullmatch(r"PANOPTES__[A-Z0-9]+__[A-Z0-9_]+", var):
                fail(where, f"env {var} is not a PANOPTES__<SECTION>__<KEY> name")
        for var in ("PANOPTES__REDIS__URL",):
            for e in c.get("env") or []:
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if e["name"] == var and ref and not str(secrets.get(ref["name"], {}).get(ref["key"], "")).startswith("rediss://"):
                    fail(where, f"{var}: the example Secret's value must be a rediss:// URL")
        if role == "gateway":
            for cidr in str(env.get("PANOPTES__SERVER__TRUSTED_PROXIES", "")).split(","):
                try:
                    ipaddress.ip_network(cidr.strip())
                except ValueError:
                    fail(where, f"PANOPTES__SERVER__TRUSTED_PROXIES: {cidr!r} is not an address or CIDR")

        # Ports agree with the listen addresses.
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports") or []}
        listen = env.get("PANOPTES__SERVER__LISTEN" if role == "gateway" else "PANOPTES__WORKER__METRICS_LISTEN")
        if isinstance(listen, str) and port_of(listen) not in ports.values():
            fail(where, f"listen address {listen} has no matching containerPort")

        # The data directory is a writable emptyDir under a read-only root.
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        mounts = {m["mountPath"]: m for m in c.get("volumeMounts") or []}
        data_dir = env.get("PANOPTES__DATA__DIR")
        m = mounts.get(data_dir) if isinstance(data_dir, str) else None
        if m is None:
            fail(where, f"PANOPTES__DATA__DIR {data_dir!r} is not a volume mount")
        elif "emptyDir" not in volumes.get(m["name"], {}) or m.get("readOnly"):
            fail(where, f"{data_dir} must be a writable emptyDir")

        # Security context.
        psc, csc = pod.get("securityContext") or {}, c.get("securityContext") or {}
        if not (psc.get("runAsNonRoot") or csc.get("runAsNonRoot")):
            fail(where, "runAsNonRoot is not set")
        if (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            fail(where, "seccompProfile RuntimeDefault is not set")
        if csc.get("allowPrivilegeEscalation") is not False:
            fail(where, "allowPrivilegeEscalation must be false")
        if csc.get("readOnlyRootFilesystem") is not True:
            fail(where, "readOnlyRootFilesystem must be true")
        if "ALL" not in ((csc.get("capabilities") or {}).get("drop") or []):
            fail(where, "capabilities must drop ALL")
        if csc.get("privileged"):
            fail(where, "privileged container")
        if pod.get("automountServiceAccountToken") is not False:
            fail(where, "automountServiceAccountToken must be false (no process calls the API)")
        if pod.get("serviceAccountName") not in service_accounts:
            fail(where, f"serviceAccountName {pod.get('serviceAccountName')!r} is not defined")

        # Resources and probes.
        res = c.get("resources") or {}
        for kind in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in (res.get(kind) or {}):
                    fail(where, f"resources.{kind}.{r} is not set")
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            p = c.get(probe)
            if p is None:
                fail(where, f"{probe} is missing")
                continue
            port = (p.get("httpGet") or {}).get("port")
            if port is not None and port not in ports and port not in ports.values():
                fail(where, f"{probe} uses port {port!r}, not a container port")

        # Spread constraints select this workload's own pods.
        for t in pod.get("topologySpreadConstraints") or []:
            if not selects(t.get("labelSelector"), tmpl_labels):
                fail(where, f"topologySpreadConstraint on {t['topologyKey']} does not select its own pods")

        if role == "gateway":
            grace = pod.get("terminationGracePeriodSeconds", 30)
            pre = ((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep", {}).get("seconds")
            shutdown = env.get("PANOPTES__SERVER__SHUTDOWN_GRACE_SECONDS", "10")
            if pre is None:
                fail(where, "the gateway needs a preStop pause (endpoints must drop it before SIGTERM)")
            elif isinstance(shutdown, str) and grace < pre + int(shutdown) + 5:
                fail(where, f"terminationGracePeriodSeconds {grace} < preStop {pre} + shutdown grace {shutdown} + 5")
        if role == "detect":
            lim, req = res.get("limits") or {}, res.get("requests") or {}
            if str(lim.get("nvidia.com/gpu")) != "1" or str(req.get("nvidia.com/gpu", "1")) != "1":
                fail(where, "detect must request and limit nvidia.com/gpu: 1")
            if not pod.get("nodeSelector") or not pod.get("tolerations"):
                fail(where, "detect needs a GPU nodeSelector and tolerations")

    for role in sorted(ROLES - set(seen_roles)):
        fail("manifests", f"no Deployment runs role {role}")


    # -- references between objects ----------------------------------------------

    def deployment_pods():
        for name, (_, d) in deployments.items():
            yield name, d["spec"]["template"]["metadata"].get("labels") or {}, d["spec"]["template"]["spec"]


    services = {}
    for where, svc in by_kind("Service"):
        services[name_of(svc)] = svc
        sel = {"matchLabels": svc["spec"].get("selector") or {}}
        matched = [(n, pod) for n, labels, pod in deployment_pods() if selects(sel, labels)]
        if not matched:
            fail(where, "selector matches no Deployment's pods")
        for p in svc["spec"]["ports"]:
            tp = p.get("targetPort", p["port"])
            for n, pod in matched:
                names = {cp.get("name") for c in pod["containers"] for cp in c.get("ports") or []}
                nums = {cp["containerPort"] for c in pod["containers"] for cp in c.get("ports") or []}
                if tp not in names and tp not in nums:
                    fail(where, f"targetPort {tp!r} is not a port of {n}")

    for where, ing in by_kind("Ingress"):
        for rule in ing["spec"].get("rules") or []:
            for path in rule.get("http", {}).get("paths") or []:
                be = path["backend"]["service"]
                svc = services.get(be["name"])
                if svc is None:
                    fail(where, f"backend Service {be['name']!r} does not exist")
                    continue
                port = be["port"].get("name", be["port"].get("number"))
                if port not in {p.get("name") for p in svc["spec"]["ports"]} | {p["port"] for p in svc["spec"]["ports"]}:
                    fail(where, f"backend port {port!r} is not a port of Service {be['name']}")
                if path["path"] in ("/metrics", "/healthz", "/readyz"):
                    fail(where, f"{path['path']} must not be public")
        ann = ing["metadata"].get("annotations") or {}
        if ann.get("nginx.ingress.kubernetes.io/proxy-buffering") != "off":
            fail(where, "SSE needs nginx.ingress.kubernetes.io/proxy-buffering: off")
        if int(ann.get("nginx.ingress.kubernetes.io/proxy-read-timeout", "60")) < 3600:
            fail(where, "SSE needs nginx.ingress.kubernetes.io/proxy-read-timeout of at least 3600")

    autoscaled = {}  # Deployment name -> [(where, autoscaler kind)]
    for kind in ("HorizontalPodAutoscaler", "ScaledObject"):
        for where, obj in by_kind(kind):
            ref = obj["spec"]["scaleTargetRef"]
            if ref.get("kind", "Deployment") != "Deployment":
                fail(where, f"scales a {ref.get('kind')}, expected a Deployment")
            autoscaled.setdefault(ref["name"], []).append((where, kind))
    for target, owners in autoscaled.items():
        if target not in deployments:
            fail(owners[0][0], f"scales Deployment {target!r}, which does not exist")
        elif len(owners) > 1:
            fail(owners[0][0], f"Deployment {target} is scaled by several autoscalers: {[w for w, _ in owners]}")
        elif "replicas" in deployments[target][1]["spec"]:
            fail(deployments[target][0], f"sets spec.replicas, but {owners[0][0]} owns the replica count")
    for role, want in (("gateway", "HorizontalPodAutoscaler"), ("detect", "ScaledObject")):
        for name, (where, _) in deployments.items():
            if seen_roles.get(role) == where and want not in [k for _, k in autoscaled.get(name, [])]:
                fail(where, f"the {role} Deployment needs a {want}")

    for where, hpa in by_kind("HorizontalPodAutoscaler"):
        metric_names = [m["pods"]["metric"]["name"] for m in hpa["spec"].get("metrics") or [] if m["type"] == "Pods"]
        if "panoptes_sse_streams" not in metric_names:
            fail(where, "the gateway HPA must scale on the panoptes_sse_streams pods metric")
        down = ((hpa["spec"].get("behavior") or {}).get("scaleDown") or {}).get("stabilizationWindowSeconds", 300)
        if down < 600:
            fail(where, f"scale-down stabilization {down}s churns SSE clients; use at least 600")

    pdb_covered = set()
    for where, pdb in by_kind("PodDisruptionBudget"):
        hits = [n for n, labels, _ in deployment_pods() if selects(pdb["spec"]["selector"], labels)]
        if not hits:
            fail(where, "selector matches no Deployment's pods")
        pdb_covered.update(hits)
    for n in sorted(set(deployments) - pdb_covered):
        fail(deployments[n][0], "no PodDisruptionBudget covers this Deployment")

    for where, np in by_kind("NetworkPolicy"):
        sel = np["spec"]["podSelector"]
        if sel and not any(selects(sel, labels) for _, labels, _ in deployment_pods()):
            fail(where, "podSelector matches no Deployment's pods")

    trigger_auths = {name_of(d): (w, d) for w, d in by_kind("TriggerAuthentication")}
    for name, (where, ta) in trigger_auths.items():
        for ref in ta["spec"].get("secretTargetRef") or []:
            if ref["name"] not in secrets or ref["key"] not in secrets[ref["name"]]:
                fail(where, f"secretTargetRef {ref['name']}/{ref['key']} is not in the example Secret")
        params = {r["parameter"] for r in ta["spec"].get("secretTargetRef") or []}
        for p in ("address", "password", "tls"):
            if p not in params:
                fail(where, f"the Redis TriggerAuthentication should provide {p!r} from the Secret")

    EXPR_BUILTINS = {"max", "min", "float", "int", "abs", "ceil", "floor", "round", "nil", "true", "false"}
    SHARD_STREAMS = {f"panoptes:v1:jobs:{{frames}}:{i}" for i in range(4)}
    for where, so in by_kind("ScaledObject"):
        spec = so["spec"]
        lo, hi = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
        if lo > hi:  # the CRD's CEL rule
            fail(where, "minReplicaCount must be less than or equal to maxReplicaCount")
        triggers = spec["triggers"]
        names = [t.get("name") for t in triggers]
        for t in triggers:
            auth = (t.get("authenticationRef") or {}).get("name")
            if auth and auth not in trigger_auths:
                fail(where, f"trigger {t.get('name')}: no TriggerAuthentication {auth!r}")
        redis = [t for t in triggers if t["type"] == "redis-streams"]
        streams = {t["metadata"].get("stream") for t in redis}
        if streams != SHARD_STREAMS:
            fail(where, f"redis-streams triggers cover {sorted(streams)}, expected the 4 shards")
        for t in redis:
            md = t["metadata"]
            if md.get("consumerGroup") != "detect":
                fail(where, f"trigger {t.get('name')}: consumerGroup must be 'detect'")
            if not str(md.get("lagCount", "")).isdigit() or int(md["lagCount"]) <= 0:
                fail(where, f"trigger {t.get('name')}: lagCount must be a positive integer")
            if not t.get("authenticationRef"):
                fail(where, f"trigger {t.get('name')}: Redis credentials must come from a TriggerAuthentication")
        sm = (spec.get("advanced") or {}).get("scalingModifiers")
        if sm:  # what KEDA's admission webhook checks
            if None in names or len(set(names)) != len(names):
                fail(where, "scalingModifiers need every trigger named, uniquely")
            idents = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", sm.get("formula", ""))) - EXPR_BUILTINS
            if not sm.get("formula"):
                fail(where, "scalingModifiers.formula is mandatory")
            if idents - set(names):
                fail(where, f"formula names unknown triggers {sorted(idents - set(names))}")
            if set(n for n in names if n) - idents:
                fail(where, f"triggers {sorted(set(names) - idents)} are not in the formula")
            try:
                target = float(sm.get("target", ""))
                assert target > 0
            except (ValueError, AssertionError):
                fail(where, "scalingModifiers.target must be a positive number")
            if spec.get("fallback") and not str(sm.get("target", "")).isdigit():
                fail(where, "a fallback with scalingModifiers needs an integer target")


    # -- kustomization and images --------------------------------------------------

    if not rendered:
        if kustomization is None:
            fail("manifests", "no kustomization.yaml")
        else:
            kw, k = kustomization
            listed = k.get("resources") or []
            for r in listed:
                if not os.path.exists(os.path.join(manifest_dir, r)):
                    fail(kw, f"resource {r} does not exist")
                if r.endswith(".example.yaml"):
                    fail(kw, f"{r} is an example and must not be applied")
            for f in files:
                if f not in listed and f != "kustomization.yaml" and not f.endswith(".example.yaml"):
                    fail(kw, f"{f} is not listed in resources")
            pinned = {i["name"] for i in k.get("images") or []}
            for _, (w, d) in deployments.items():
                for c in d["spec"]["template"]["spec"]["containers"]:
                    if image_name(c["image"]) not in pinned:
                        fail(w, f"image {c['image']} has no entry in kustomization images")
                    if ":" not in c["image"].rsplit("/", 1)[-1] or c["image"].endswith(":latest"):
                        fail(w, f"image {c['image']} has no fixed tag")
        for name, d in example_secrets.items():
            if d.get("data"):
                fail(name, "the example Secret should use readable stringData, not base64 data")
            for key, value in (d.get("stringData") or {}).items():
                if key.endswith(("url", "password", "secret")) and "EXAMPLE" not in str(value):
                    fail(name, f"example Secret value {key} should be obviously fake (contain EXAMPLE)")


try:
    semantic()
except (KeyError, TypeError, AttributeError, IndexError, ValueError) as e:
    # A document malformed in a way the schema check has reported above.
    fail("manifests", f"consistency checks stopped at a malformed document: {e!r}")


print(f"{passed} schema validations passed, {len(docs)} documents")
if errors:
    for e in errors:
        print(f"FAIL  {e}")
    print(f"{len(errors)} problem(s)")
    sys.exit(1)
PY
}

log "validating $(ls "$MANIFESTS"/*.yaml | wc -l) manifests in deploy/kubernetes (Kubernetes $K8S_VERSIONS, KEDA v2.20.2)"
check "$MANIFESTS"
RUNS=1

# The applied form: what `kubectl apply -k` sends, after kustomize's
# transformers (namespace, labels, images).
if command -v kubectl >/dev/null 2>&1 && kubectl version --client 2>/dev/null | grep -q 'Kustomize Version: v5'; then
  rendered="$(mktemp)"
  kubectl kustomize "$MANIFESTS" > "$rendered"
  log "validating the kustomize output ($(grep -c '^kind:' "$rendered") objects)"
  check "$MANIFESTS" "$rendered"
  rm -f "$rendered"
  RUNS=2
else
  log "SKIPPED: kubectl with kustomize v5 is not installed; the kustomize output was not validated"
fi

# Self-checks: each broken copy must be rejected, with the expected message.
selfcheck() {
  local what="$1" file="$2" expect="$3" script="$4" dir out
  dir="$(mktemp -d)"
  cp "$MANIFESTS"/*.yaml "$dir/"
  sed -i -e "$script" "$dir/$file"
  if cmp -s "$dir/$file" "$MANIFESTS/$file"; then
    echo "self-check '$what': the edit changed nothing in $file" >&2; rm -rf "$dir"; exit 1
  fi
  if out="$(check "$dir" 2>&1)"; then
    echo "$out" >&2
    echo "self-check '$what': the broken manifests were ACCEPTED: the gate does not work" >&2
    rm -rf "$dir"; exit 1
  fi
  if ! grep -qF -- "$expect" <<<"$out"; then
    echo "$out" >&2
    echo "self-check '$what': rejected, but without '$expect'" >&2
    rm -rf "$dir"; exit 1
  fi
  printf 'ok    rejected as expected: %s (%s)\n' "$what" "$(grep -F -- "$expect" <<<"$out" | head -n 1 | sed 's/^FAIL  //')"
  rm -rf "$dir"
  SELFCHECKS=$((SELFCHECKS + 1))
}
SELFCHECKS=0

log "self-checks: broken manifests must be rejected"
selfcheck 'replicas is a string' worker-ingest-deployment.yaml \
  "spec.replicas: 'two' is not of type 'integer'" 's/^  replicas: 2$/  replicas: "two"/'
selfcheck 'unknown field in a container' gateway-deployment.yaml \
  "Additional properties are not allowed ('imagePullPolicyy' was unexpected)" \
  's/^          imagePullPolicy: IfNotPresent$/&\n          imagePullPolicyy: Always/'
selfcheck 'apiVersion without a schema' gateway-pdb.yaml \
  "Couldn't find schema for kind PodDisruptionBudget with api version policy/v1beta9" \
  's#^apiVersion: policy/v1$#apiVersion: policy/v1beta9#'
selfcheck 'unknown ScaledObject field' detect-scaledobject.yaml \
  "Additional properties are not allowed ('minReplicas' was unexpected)" 's/^  minReplicaCount: 1$/  minReplicas: 1/'
selfcheck 'trigger metadata not a string' detect-scaledobject.yaml \
  "spec.triggers.0.metadata.lagCount: 100 is not of type 'string'" '0,/lagCount: "100"/s//lagCount: 100/'
selfcheck 'unknown TriggerAuthentication field' detect-triggerauth.yaml \
  "Additional properties are not allowed ('parameters' was unexpected)" 's/- parameter: address/- parameters: address/'
selfcheck 'contract variable missing' worker-notify-deployment.yaml \
  "role notify: contract variable PANOPTES__REDIS__URL is missing" '/- name: PANOPTES__REDIS__URL/,+4d'
selfcheck 'secret set as a literal' detect-deployment.yaml \
  "role detect: PANOPTES__AUTH__JWT_SECRET must come from a Secret" \
  '/- name: PANOPTES__AUTH__JWT_SECRET/{n;s/.*/              value: not-from-a-secret/;n;N;N;d}'
selfcheck 'Secret key that does not exist' gateway-deployment.yaml \
  "key 'store-uri' missing from the example Secret" 's/key: store-url/key: store-uri/'
selfcheck 'manifest left out of kustomization' kustomization.yaml \
  "worker-pdb.yaml is not listed in resources" '/- worker-pdb.yaml/d'
selfcheck 'duplicate key (YAML keeps the last one silently)' worker-ingest-deployment.yaml \
  "not valid YAML: duplicate key 'replicas'" 's/^  replicas: 2$/&\n  replicas: 3/'

log "deploy/kubernetes: valid, and $SELFCHECKS broken copies rejected ($(( $(date +%s) - START )) s)"
echo "kubernetes: $((RUNS + SELFCHECKS)) passed, 0 failed"
