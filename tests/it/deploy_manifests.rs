//! The Kubernetes examples in `deploy/kubernetes/`: every YAML document parses; within
//! each file the references hold (ConfigMaps, Secrets and their keys, volumes, claims,
//! ports, probe paths, Service selectors and target ports); pgwarden containers are
//! locked down and probed on the admin port; and the embedded proxy.toml and policy
//! pass `pgwarden check` when laid out as the Pod would see them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_serde::Value;

const ADMIN_PORT: u64 = 9187;
const PROXY_PORT: u64 = 6432;
/// The image's non-root user (Dockerfile `USER 10001:10001`).
const IMAGE_UID: u64 = 10001;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes")
}

/// (file name, documents) for every `*.yaml` in deploy/kubernetes, in name order.
fn manifests() -> Vec<(String, Vec<Value>)> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir())
        .expect("deploy/kubernetes exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {}", dir().display());
    files
        .into_iter()
        .map(|path| {
            let text = fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let docs: Vec<Value> = yaml_serde::Deserializer::from_str(&text)
                .map(|d| {
                    <Value as serde::Deserialize>::deserialize(d)
                        .unwrap_or_else(|e| panic!("{name}: {e}"))
                })
                .filter(|v| !v.is_null())
                .collect();
            assert!(!docs.is_empty(), "{name}: no documents");
            (name, docs)
        })
        .collect()
}

fn s<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    get(v, path).and_then(Value::as_str)
}

/// `a.b.c` lookup through mappings.
fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

fn seq<'a>(v: &'a Value, path: &str) -> Vec<&'a Value> {
    get(v, path)
        .and_then(Value::as_sequence)
        .map(|s| s.iter().collect())
        .unwrap_or_default()
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_mapping)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.as_str().unwrap().to_string(),
                        match v {
                            Value::String(s) => s.clone(),
                            other => yaml_serde::to_string(other).unwrap().trim().to_string(),
                        },
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The objects of one file, by kind and name.
struct Objects<'a> {
    file: &'a str,
    docs: &'a [Value],
}

impl<'a> Objects<'a> {
    fn find(&self, kind: &str, name: &str) -> Option<&'a Value> {
        self.docs
            .iter()
            .find(|d| s(d, "kind") == Some(kind) && s(d, "metadata.name") == Some(name))
    }

    fn of_kind(&self, kind: &str) -> Vec<&'a Value> {
        self.docs
            .iter()
            .filter(|d| s(d, "kind") == Some(kind))
            .collect()
    }

    /// Keys of a ConfigMap's or Secret's `data` and `stringData`, with text values
    /// (`data` is base64 and not decoded here: these examples use stringData).
    fn keys(&self, kind: &str, name: &str) -> BTreeMap<String, String> {
        let obj = self
            .find(kind, name)
            .unwrap_or_else(|| panic!("{}: {kind} {name:?} is used but not defined", self.file));
        let mut keys = string_map(obj.get("data"));
        keys.extend(string_map(obj.get("stringData")));
        keys
    }
}

fn pod_spec(deploy: &Value) -> &Value {
    get(deploy, "spec.template.spec").expect("spec.template.spec")
}

/// (container, is an init container).
fn containers(pod: &Value) -> Vec<(&Value, bool)> {
    seq(pod, "initContainers")
        .into_iter()
        .map(|c| (c, true))
        .chain(seq(pod, "containers").into_iter().map(|c| (c, false)))
        .collect()
}

fn is_pgwarden(c: &Value) -> bool {
    s(c, "image").is_some_and(|i| i.contains("pgwarden"))
}

/// A probe's or Service's port (number or name) resolved against a container's ports.
fn resolve_port(container: &Value, port: &Value) -> Option<u64> {
    let ports = seq(container, "ports");
    match port {
        Value::Number(n) => {
            let n = n.as_u64()?;
            ports
                .iter()
                .any(|p| get(p, "containerPort").and_then(Value::as_u64) == Some(n))
                .then_some(n)
        }
        Value::String(name) => ports
            .iter()
            .find(|p| s(p, "name") == Some(name))
            .and_then(|p| get(p, "containerPort").and_then(Value::as_u64)),
        _ => None,
    }
}

fn named_port(container: &Value, name: &str) -> Option<u64> {
    resolve_port(container, &Value::String(name.into()))
}

fn bool_at(v: &Value, path: &str) -> Option<bool> {
    get(v, path).and_then(Value::as_bool)
}

#[test]
fn every_document_is_a_named_kubernetes_object() {
    let known = [
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "PersistentVolumeClaim",
        "NetworkPolicy",
    ];
    for (file, docs) in manifests() {
        let mut seen = BTreeSet::new();
        for d in &docs {
            let kind = s(d, "kind").unwrap_or_else(|| panic!("{file}: a document without kind"));
            assert!(known.contains(&kind), "{file}: unexpected kind {kind}");
            assert!(
                s(d, "apiVersion").is_some(),
                "{file}: {kind} without apiVersion"
            );
            let name = s(d, "metadata.name")
                .unwrap_or_else(|| panic!("{file}: {kind} without metadata.name"));
            assert!(
                seen.insert((kind, name)),
                "{file}: {kind} {name} defined twice"
            );
        }
    }
}

#[test]
fn references_resolve_within_each_file() {
    for (file, docs) in manifests() {
        let objs = Objects {
            file: &file,
            docs: &docs,
        };
        for deploy in objs.of_kind("Deployment") {
            let dname = s(deploy, "metadata.name").unwrap();
            let pod = pod_spec(deploy);
            let labels = string_map(get(deploy, "spec.template.metadata.labels"));
            for (k, v) in string_map(get(deploy, "spec.selector.matchLabels")) {
                assert_eq!(
                    labels.get(&k),
                    Some(&v),
                    "{file}: Deployment {dname}: selector {k}={v} does not match the Pod labels"
                );
            }

            // Volumes point at objects defined here.
            let mut volumes = BTreeSet::new();
            for v in seq(pod, "volumes") {
                let vname = s(v, "name").unwrap();
                volumes.insert(vname.to_string());
                if let Some(cm) = s(v, "configMap.name") {
                    objs.keys("ConfigMap", cm);
                }
                if let Some(secret) = s(v, "secret.secretName") {
                    objs.keys("Secret", secret);
                }
                if let Some(claim) = s(v, "persistentVolumeClaim.claimName") {
                    assert!(
                        objs.find("PersistentVolumeClaim", claim).is_some(),
                        "{file}: claim {claim} is used but not defined"
                    );
                }
            }

            for (c, _) in containers(pod) {
                let cname = s(c, "name").unwrap();
                for m in seq(c, "volumeMounts") {
                    let vname = s(m, "name").unwrap();
                    assert!(
                        volumes.contains(vname),
                        "{file}: {dname}/{cname} mounts undefined volume {vname}"
                    );
                }
                // Every secretKeyRef / configMapKeyRef names an existing key.
                for e in seq(c, "env") {
                    let ename = s(e, "name").unwrap();
                    for (kind, path) in [
                        ("Secret", "valueFrom.secretKeyRef"),
                        ("ConfigMap", "valueFrom.configMapKeyRef"),
                    ] {
                        if let Some(r) = get(e, path) {
                            let (name, key) = (s(r, "name").unwrap(), s(r, "key").unwrap());
                            assert!(
                                objs.keys(kind, name).contains_key(key),
                                "{file}: {dname}/{cname} env {ename}: {kind} {name} has no key {key}"
                            );
                        }
                    }
                }
                // Probe ports exist on the container.
                for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
                    if let Some(port) = get(c, &format!("{probe}.httpGet.port")) {
                        assert!(
                            resolve_port(c, port).is_some(),
                            "{file}: {dname}/{cname} {probe} port {port:?} is not a container port"
                        );
                    }
                }
            }
        }

        // Services select Pods defined here and target their ports.
        for svc in objs.of_kind("Service") {
            let sname = s(svc, "metadata.name").unwrap();
            let selector = string_map(get(svc, "spec.selector"));
            let pods: Vec<&Value> = objs
                .of_kind("Deployment")
                .into_iter()
                .filter(|d| {
                    let labels = string_map(get(d, "spec.template.metadata.labels"));
                    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
                })
                .map(pod_spec)
                .collect();
            assert!(!pods.is_empty(), "{file}: Service {sname} selects no Pod");
            for p in seq(svc, "spec.ports") {
                let target = get(p, "targetPort").or_else(|| get(p, "port")).unwrap();
                assert!(
                    pods.iter().any(|pod| containers(pod)
                        .iter()
                        .any(|(c, _)| resolve_port(c, target).is_some())),
                    "{file}: Service {sname} targetPort {target:?} matches no container port"
                );
            }
        }
    }
}

#[test]
fn pgwarden_containers_are_probed_scraped_and_locked_down() {
    let mut seen = 0;
    for (file, docs) in manifests() {
        let objs = Objects {
            file: &file,
            docs: &docs,
        };
        for deploy in objs.of_kind("Deployment") {
            let dname = s(deploy, "metadata.name").unwrap();
            let pod = pod_spec(deploy);
            for (c, init) in containers(pod) {
                if !is_pgwarden(c) {
                    continue;
                }
                seen += 1;
                let at = format!("{file}: {dname}/{}", s(c, "name").unwrap());
                assert_eq!(named_port(c, "postgres"), Some(PROXY_PORT), "{at}");
                assert_eq!(named_port(c, "admin"), Some(ADMIN_PORT), "{at}");

                // A pgwarden in initContainers must be a native sidecar.
                let app_containers = seq(pod, "containers");
                if init {
                    assert_eq!(
                        s(c, "restartPolicy"),
                        Some("Always"),
                        "{at}: an init container without restartPolicy Always would block the app"
                    );
                    assert!(!app_containers.is_empty(), "{at}: sidecar without an app");
                }

                // Probes: /healthz and /readyz on the admin port.
                for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")]
                {
                    let p = get(c, &format!("{probe}.httpGet"))
                        .unwrap_or_else(|| panic!("{at}: no {probe}"));
                    assert_eq!(s(p, "path"), Some(path), "{at}: {probe}");
                    assert_eq!(
                        resolve_port(c, p.get("port").unwrap()),
                        Some(ADMIN_PORT),
                        "{at}: {probe} port"
                    );
                }
                if let Some(p) = get(c, "startupProbe.httpGet") {
                    assert_eq!(s(p, "path"), Some("/healthz"), "{at}: startupProbe");
                    assert_eq!(resolve_port(c, p.get("port").unwrap()), Some(ADMIN_PORT));
                }

                // Prometheus scrapes the admin port.
                let ann = string_map(get(deploy, "spec.template.metadata.annotations"));
                assert_eq!(
                    ann.get("prometheus.io/scrape").map(String::as_str),
                    Some("true"),
                    "{at}"
                );
                assert_eq!(
                    ann.get("prometheus.io/port"),
                    Some(&ADMIN_PORT.to_string()),
                    "{at}"
                );
                assert_eq!(
                    ann.get("prometheus.io/path").map(String::as_str),
                    Some("/metrics")
                );

                // Security context: the container's, or the Pod's where Kubernetes
                // lets the Pod set it.
                let sc = c
                    .get("securityContext")
                    .unwrap_or_else(|| panic!("{at}: no securityContext"));
                let psc = pod.get("securityContext").cloned().unwrap_or(Value::Null);
                let either = |path: &str| get(sc, path).or_else(|| get(&psc, path));
                assert_eq!(
                    either("runAsNonRoot").and_then(Value::as_bool),
                    Some(true),
                    "{at}: runAsNonRoot"
                );
                assert_eq!(
                    either("runAsUser").and_then(Value::as_u64),
                    Some(IMAGE_UID),
                    "{at}: runAsUser should be the image's user"
                );
                assert_eq!(bool_at(sc, "readOnlyRootFilesystem"), Some(true), "{at}");
                assert_eq!(bool_at(sc, "allowPrivilegeEscalation"), Some(false), "{at}");
                assert!(
                    seq(sc, "capabilities.drop")
                        .iter()
                        .any(|v| v.as_str() == Some("ALL")),
                    "{at}: capabilities.drop must contain ALL"
                );
                assert!(
                    seq(sc, "capabilities.add").is_empty(),
                    "{at}: no capabilities added"
                );
                assert_eq!(
                    either("seccompProfile.type").and_then(Value::as_str),
                    Some("RuntimeDefault"),
                    "{at}: seccompProfile"
                );
                assert_ne!(bool_at(sc, "privileged"), Some(true), "{at}");

                for kind in ["requests", "limits"] {
                    for r in ["cpu", "memory"] {
                        assert!(
                            get(c, &format!("resources.{kind}.{r}")).is_some(),
                            "{at}: resources.{kind}.{r}"
                        );
                    }
                }
            }
        }
    }
    assert!(
        seen >= 2,
        "expected the sidecar and the gateway, saw {seen} pgwarden containers"
    );
}

/// What one pgwarden container would see, laid out under a temp root.
struct PodView {
    root: tempfile::TempDir,
    config: PathBuf,
    env: Vec<(String, String)>,
}

/// The CA, a leaf for `name`, and its key, as PEM.
fn test_pki(name: &str) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec![name.to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    (ca.pem(), leaf.pem(), key.serialize_pem())
}

/// Mounts every volume of `c` under a temp root: ConfigMap keys verbatim, Secret keys
/// verbatim except certificate material (placeholders in the examples), which is
/// generated; other volumes empty. Absolute paths under a mount in proxy.toml are
/// re-rooted, as the container's mount namespace would.
fn pod_view(objs: &Objects<'_>, pod: &Value, c: &Value) -> PodView {
    let root = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_pki("pgwarden.test");
    let volumes: BTreeMap<&str, &Value> = seq(pod, "volumes")
        .into_iter()
        .map(|v| (s(v, "name").unwrap(), v))
        .collect();
    let mut mounts: Vec<(String, bool)> = Vec::new();
    for m in seq(c, "volumeMounts") {
        let mount = s(m, "mountPath").unwrap();
        let read_only = bool_at(m, "readOnly").unwrap_or(false);
        mounts.push((mount.to_string(), read_only));
        let at = root.path().join(mount.trim_start_matches('/'));
        fs::create_dir_all(&at).unwrap();
        let v = volumes[s(m, "name").unwrap()];
        let files = if let Some(cm) = s(v, "configMap.name") {
            objs.keys("ConfigMap", cm)
        } else if let Some(secret) = s(v, "secret.secretName") {
            objs.keys("Secret", secret)
                .into_iter()
                .map(|(k, v)| {
                    let v = match k.as_str() {
                        "ca.crt" => ca.clone(),
                        k if k.ends_with(".crt") => cert.clone(),
                        k if k.ends_with(".key") => key.clone(),
                        _ => v,
                    };
                    (k, v)
                })
                .collect()
        } else {
            BTreeMap::new()
        };
        for (k, text) in files {
            fs::write(at.join(&k), text).unwrap();
        }
    }

    let args: Vec<&str> = seq(c, "args").iter().filter_map(|v| v.as_str()).collect();
    let i = args
        .iter()
        .position(|a| *a == "--config")
        .expect("pgwarden args give --config");
    let config_in_pod = args[i + 1];
    assert!(args.contains(&"serve"), "pgwarden runs `serve`");
    let config = root.path().join(config_in_pod.trim_start_matches('/'));
    let text = fs::read_to_string(&config)
        .unwrap_or_else(|_| panic!("{config_in_pod} is not provided by any mounted volume"));

    // Re-root absolute paths that lie under a mount (longest mount first).
    mounts.sort_by_key(|(m, _)| std::cmp::Reverse(m.len()));
    let mut rerooted = text.clone();
    for (m, _) in &mounts {
        let from = format!("\"{m}/");
        let to = format!("\"{}{m}/", root.path().display());
        rerooted = rerooted.replace(&from, &to);
    }
    // Whatever pgwarden writes must be on a writable mount (the root fs is read-only).
    let cfg: toml::Value = toml::from_str(&text).unwrap();
    if let Some(audit) = cfg
        .get("audit")
        .and_then(|a| a.get("path"))
        .and_then(|p| p.as_str())
    {
        if audit != "-" {
            let mount = mounts
                .iter()
                .find(|(m, _)| audit.starts_with(&format!("{m}/")))
                .unwrap_or_else(|| {
                    panic!("audit path {audit} is on the read-only root filesystem")
                });
            assert!(
                !mount.1,
                "audit path {audit} is on a read-only mount {}",
                mount.0
            );
        }
    }
    fs::write(&config, rerooted).unwrap();

    let env = seq(c, "env")
        .into_iter()
        .filter_map(|e| {
            let name = s(e, "name")?.to_string();
            let value = match (s(e, "value"), get(e, "valueFrom.secretKeyRef")) {
                (Some(v), _) => v.to_string(),
                (None, Some(r)) => objs.keys("Secret", s(r, "name")?)[s(r, "key")?].clone(),
                _ => return None,
            };
            Some((name, value))
        })
        .collect();
    PodView { root, config, env }
}

#[test]
fn embedded_config_passes_pgwarden_check() {
    let mut checked = 0;
    for (file, docs) in manifests() {
        let objs = Objects {
            file: &file,
            docs: &docs,
        };
        for deploy in objs.of_kind("Deployment") {
            let pod = pod_spec(deploy);
            for (c, _) in containers(pod) {
                if !is_pgwarden(c) {
                    continue;
                }
                let at = format!("{file}: {}", s(deploy, "metadata.name").unwrap());
                let view = pod_view(&objs, pod, c);
                let text = fs::read_to_string(&view.config).unwrap();
                let cfg: toml::Value = toml::from_str(&text).unwrap();

                // Listeners match the container ports; targets are cluster Services.
                let listen = cfg["server"]["listen"].as_str().unwrap();
                assert!(
                    listen.ends_with(&format!(":{PROXY_PORT}")),
                    "{at}: {listen}"
                );
                let admin = cfg["admin"]["listen"].as_str().unwrap();
                assert_eq!(
                    admin,
                    format!("0.0.0.0:{ADMIN_PORT}"),
                    "{at}: probes need the Pod IP"
                );
                for (name, t) in cfg["targets"].as_table().unwrap() {
                    let host = t["host"].as_str().unwrap();
                    assert!(host.contains(".svc"), "{at}: target {name} host {host}");
                }
                // Every approver's token variable is set from a Secret.
                for (name, a) in cfg["admin"]["approvers"].as_table().unwrap() {
                    let var = a["token_env"].as_str().unwrap();
                    assert!(
                        view.env.iter().any(|(k, _)| k == var),
                        "{at}: approver {name}: {var} is not set in the container"
                    );
                }

                let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgwarden"));
                cmd.arg("check").arg("--config").arg(&view.config);
                for (k, _) in std::env::vars() {
                    if k.starts_with("PGWARDEN") {
                        cmd.env_remove(k);
                    }
                }
                cmd.envs(view.env.iter().map(|(k, v)| (k, v)));
                let out = cmd.output().expect("run pgwarden check");
                let stdout = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success(),
                    "{at}: pgwarden check failed:\n{stdout}{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(
                    !stdout.contains("warning:"),
                    "{at}: pgwarden check warns:\n{stdout}"
                );
                drop(view.root);
                checked += 1;
            }
        }
    }
    assert!(checked >= 2, "checked {checked} configurations");
}

#[test]
fn the_app_next_to_the_sidecar_talks_to_the_sidecar() {
    let (file, docs) = manifests()
        .into_iter()
        .find(|(f, _)| f == "sidecar.yaml")
        .expect("sidecar.yaml");
    let objs = Objects {
        file: &file,
        docs: &docs,
    };
    let deploy = objs.of_kind("Deployment")[0];
    let pod = pod_spec(deploy);
    let sidecar = seq(pod, "initContainers")
        .into_iter()
        .find(|c| is_pgwarden(c))
        .expect("pgwarden in initContainers");
    let port = named_port(sidecar, "postgres").unwrap();
    let app = seq(pod, "containers")[0];
    let url = seq(app, "env")
        .into_iter()
        .find(|e| s(e, "name") == Some("DATABASE_URL"))
        .and_then(|e| s(e, "value"))
        .expect("DATABASE_URL");
    assert!(
        url.contains(&format!("@127.0.0.1:{port}/")),
        "the app must connect through the sidecar: {url}"
    );
}
