//! Reading a Kubernetes manifest: a file of one or more YAML documents in,
//! the container under proof out, with its probes (Kubernetes defaults
//! filled in), ports, `lifecycle.preStop` and the pod's
//! `terminationGracePeriodSeconds`. Errors name the file, line, document
//! and field.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::yaml::{IntOrStr, Node, YamlError, YamlFile};

/// The three probes the kubelet runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProbeKind {
    Startup,
    Readiness,
    Liveness,
}

impl ProbeKind {
    pub const ALL: [ProbeKind; 3] = [
        ProbeKind::Readiness,
        ProbeKind::Liveness,
        ProbeKind::Startup,
    ];

    /// The manifest's field name, e.g. `readinessProbe`.
    pub fn field(self) -> &'static str {
        match self {
            ProbeKind::Startup => "startupProbe",
            ProbeKind::Readiness => "readinessProbe",
            ProbeKind::Liveness => "livenessProbe",
        }
    }
}

impl fmt::Display for ProbeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.field())
    }
}

/// A probe's port: a number, or the name of a container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRef {
    Number(u16),
    Name(String),
}

impl fmt::Display for PortRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(name) => write!(f, "`{name}`"),
        }
    }
}

/// What the probe does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handler {
    HttpGet {
        path: String,
        port: PortRef,
        /// `HTTP` (default) or `HTTPS`.
        scheme: String,
        /// Another host than the pod's IP, when set.
        host: Option<String>,
    },
    TcpSocket {
        port: PortRef,
    },
    Exec {
        command: Vec<String>,
    },
    Grpc {
        port: u16,
        service: Option<String>,
    },
}

impl fmt::Display for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Handler::HttpGet {
                path, port, scheme, ..
            } => write!(f, "httpGet {} port {port} ({scheme})", path),
            Handler::TcpSocket { port } => write!(f, "tcpSocket port {port}"),
            Handler::Exec { command } => write!(f, "exec `{}`", command.join(" ")),
            Handler::Grpc { port, .. } => write!(f, "grpc port {port}"),
        }
    }
}

/// A setting with whether the manifest wrote it or Kubernetes' default
/// applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub value: u32,
    pub explicit: bool,
}

impl Setting {
    pub fn seconds(self) -> Duration {
        Duration::from_secs(u64::from(self.value))
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.explicit {
            write!(f, "{}", self.value)
        } else {
            write!(f, "{} (default)", self.value)
        }
    }
}

/// One probe with Kubernetes' defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub kind: ProbeKind,
    pub handler: Handler,
    /// 1-based line of the probe in the manifest.
    pub line: usize,
    pub initial_delay_seconds: Setting,
    pub period_seconds: Setting,
    pub timeout_seconds: Setting,
    pub success_threshold: Setting,
    pub failure_threshold: Setting,
}

impl Probe {
    /// The httpGet path, when the probe is an HTTP probe.
    pub fn http_path(&self) -> Option<&str> {
        match &self.handler {
            Handler::HttpGet { path, .. } => Some(path),
            _ => None,
        }
    }

    /// `failureThreshold × periodSeconds`: how long failing probes take to
    /// act (NotReady, or a restart).
    pub fn failure_window(&self) -> Duration {
        self.period_seconds.seconds() * self.failure_threshold.value
    }

    /// `initialDelaySeconds + failureThreshold × periodSeconds`: how long a
    /// container may take to start before this probe restarts it.
    pub fn startup_budget(&self) -> Duration {
        self.initial_delay_seconds.seconds() + self.failure_window()
    }
}

/// A declared container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPort {
    pub name: Option<String>,
    pub number: u16,
}

/// `lifecycle.preStop`, as far as its duration is known.
#[derive(Debug, Clone, PartialEq)]
pub enum PreStop {
    /// `sleep: {seconds: N}`, or an exec hook that only sleeps.
    Sleep { seconds: f64, how: String },
    /// Any other hook: its duration cannot be known from the manifest.
    Other { how: String },
}

/// The pod-level `terminationGracePeriodSeconds` (default 30).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GracePeriod {
    pub seconds: u64,
    pub explicit: bool,
}

/// The workload that holds the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub kind: String,
    pub name: String,
    /// 1-based document number in the file.
    pub document: usize,
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} (document {})",
            self.kind, self.name, self.document
        )
    }
}

/// The container under proof, read from the manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    pub workload: Workload,
    pub name: String,
    /// 1-based line of the container in the manifest.
    pub line: usize,
    pub ports: Vec<ContainerPort>,
    pub readiness: Option<Probe>,
    pub liveness: Option<Probe>,
    pub startup: Option<Probe>,
    pub pre_stop: Option<PreStop>,
    pub grace_period: GracePeriod,
}

impl Container {
    pub fn probe(&self, kind: ProbeKind) -> Option<&Probe> {
        match kind {
            ProbeKind::Startup => self.startup.as_ref(),
            ProbeKind::Readiness => self.readiness.as_ref(),
            ProbeKind::Liveness => self.liveness.as_ref(),
        }
    }

    /// The declared port called `name`.
    pub fn named_port(&self, name: &str) -> Option<u16> {
        self.ports
            .iter()
            .find(|p| p.name.as_deref() == Some(name))
            .map(|p| p.number)
    }

    /// The ports as `http=8000, 9090` for messages.
    pub fn ports_text(&self) -> String {
        if self.ports.is_empty() {
            return "none declared".into();
        }
        self.ports
            .iter()
            .map(|p| match &p.name {
                Some(name) => format!("{name}={}", p.number),
                None => p.number.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The container port the service serves on. gonogo starts the service on
/// a port of its own choosing; a probe that targets this port is mapped to
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServingPort {
    pub number: u16,
    pub name: Option<String>,
}

impl fmt::Display for ServingPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "containerPort {} `{name}`", self.number),
            None => write!(f, "containerPort {}", self.number),
        }
    }
}

impl Container {
    /// The port the service serves on: `wanted` (the scenario's
    /// `[kubernetes] port`), else the only declared port, else the port
    /// number the probes use when they agree.
    pub fn serving_port(&self, wanted: Option<&PortRef>) -> Result<ServingPort, String> {
        let named = |number: u16| {
            self.ports
                .iter()
                .find(|p| p.number == number)
                .and_then(|p| p.name.clone())
        };
        match wanted {
            Some(PortRef::Name(name)) => match self.named_port(name) {
                Some(number) => Ok(ServingPort {
                    number,
                    name: Some(name.clone()),
                }),
                None => Err(format!(
                    "container `{}` has no port named `{name}` (ports: {})",
                    self.name,
                    self.ports_text()
                )),
            },
            Some(PortRef::Number(number)) => Ok(ServingPort {
                number: *number,
                name: named(*number),
            }),
            None => match self.ports.as_slice() {
                [one] => Ok(ServingPort {
                    number: one.number,
                    name: one.name.clone(),
                }),
                [] => self
                    .probe_port_number()
                    .map(|number| ServingPort { number, name: None }),
                _ => Err(format!(
                    "container `{}` declares several ports ({}); say which one the service serves on with `port = …` in [kubernetes]",
                    self.name,
                    self.ports_text()
                )),
            },
        }
    }

    /// The one port number the probes use, when the container declares
    /// no ports.
    fn probe_port_number(&self) -> Result<u16, String> {
        let mut numbers: Vec<u16> = ProbeKind::ALL
            .iter()
            .filter_map(|k| self.probe(*k))
            .filter_map(|p| match &p.handler {
                Handler::HttpGet {
                    port: PortRef::Number(n),
                    ..
                }
                | Handler::TcpSocket {
                    port: PortRef::Number(n),
                } => Some(*n),
                Handler::Grpc { port, .. } => Some(*port),
                _ => None,
            })
            .collect();
        numbers.dedup();
        match numbers.as_slice() {
            [one] => Ok(*one),
            _ => Err(format!(
                "container `{}` declares no ports and its probes do not name one port number; say which port the service serves on with `port = …` in [kubernetes]",
                self.name
            )),
        }
    }
}

/// Which workload and container to read.
#[derive(Debug, Clone, Default)]
pub struct Selection<'a> {
    /// `container = "name"`; needed when several containers are found.
    pub container: Option<&'a str>,
    /// `workload = "Kind/name"`; needed when the container is in several.
    pub workload: Option<&'a str>,
}

/// Workload kinds and where their pod spec lives.
const POD_SPEC_PATHS: &[(&str, &[&str])] = &[
    ("Deployment", &["spec", "template", "spec"]),
    ("StatefulSet", &["spec", "template", "spec"]),
    ("DaemonSet", &["spec", "template", "spec"]),
    ("ReplicaSet", &["spec", "template", "spec"]),
    ("Job", &["spec", "template", "spec"]),
    (
        "CronJob",
        &["spec", "jobTemplate", "spec", "template", "spec"],
    ),
    ("Pod", &["spec"]),
];

/// A container found in the file, before the choice.
struct Found<'a> {
    workload: Workload,
    pod: Node<'a>,
    container: Node<'a>,
    name: String,
}

/// Read `path` and pick the container.
pub fn read(path: &Path, selection: &Selection<'_>) -> Result<Container, YamlError> {
    let file = YamlFile::read(path)?;
    from_file(&file, selection)
}

/// Pick the container from an already parsed file.
pub fn from_file(file: &YamlFile, selection: &Selection<'_>) -> Result<Container, YamlError> {
    let mut found = Vec::new();
    for (number, doc) in file.documents() {
        collect(&doc, number, &mut found)?;
    }
    let file_error = |message: String| YamlError {
        file: file.path.clone(),
        location: None,
        field: None,
        message,
    };
    if found.is_empty() {
        return Err(file_error(
            "no Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob or Pod with containers in this file (Helm users: render the chart first, `helm template … > file`)".into(),
        ));
    }
    let listing = |list: &[&Found<'_>]| {
        list.iter()
            .map(|f| format!("`{}` in {}", f.name, f.workload))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let mut candidates: Vec<&Found<'_>> = found
        .iter()
        .filter(|f| selection.container.is_none_or(|c| c == f.name))
        .collect();
    if let Some(wanted) = selection.workload {
        candidates.retain(|f| {
            format!("{}/{}", f.workload.kind, f.workload.name).eq_ignore_ascii_case(wanted)
        });
    }
    match candidates.as_slice() {
        [one] => container(one),
        [] => Err(file_error(format!(
            "no container matches {}; the file has: {}",
            describe_selection(selection),
            listing(&found.iter().collect::<Vec<_>>())
        ))),
        many => Err(file_error(format!(
            "{} containers match {}: {}; {}",
            many.len(),
            describe_selection(selection),
            listing(many),
            if selection.container.is_none() {
                "name one with `container = \"…\"` in [kubernetes]"
            } else {
                "pick the workload with `workload = \"Kind/name\"` in [kubernetes]"
            }
        ))),
    }
}

fn describe_selection(selection: &Selection<'_>) -> String {
    match (selection.container, selection.workload) {
        (None, None) => "the scenario (no `container` named)".into(),
        (Some(c), None) => format!("container `{c}`"),
        (None, Some(w)) => format!("workload `{w}`"),
        (Some(c), Some(w)) => format!("container `{c}` in workload `{w}`"),
    }
}

/// Containers of the workloads in one document (a `List` holds `items`).
fn collect<'a>(doc: &Node<'a>, number: usize, out: &mut Vec<Found<'a>>) -> Result<(), YamlError> {
    if !doc.is_mapping() {
        return Err(doc.error(format!(
            "document {number} is not a Kubernetes object (a mapping with `kind`)"
        )));
    }
    let Some(kind) = doc.get("kind")? else {
        return Ok(());
    };
    let kind = kind.str()?;
    if kind == "List" || kind.ends_with("List") {
        if let Some(items) = doc.get("items")? {
            for item in items.items()? {
                collect(&item, number, out)?;
            }
        }
        return Ok(());
    }
    let Some((_, path)) = POD_SPEC_PATHS.iter().find(|(k, _)| *k == kind) else {
        return Ok(());
    };
    let name = match doc.get("metadata")? {
        Some(meta) => match meta.get("name")? {
            Some(name) => name.str()?.to_string(),
            None => "(unnamed)".into(),
        },
        None => "(unnamed)".into(),
    };
    let workload = Workload {
        kind: kind.to_string(),
        name,
        document: number,
    };
    let mut pod = doc.clone();
    for segment in *path {
        pod = pod
            .require(segment)
            .map_err(|e| in_document(e, &workload))?;
    }
    let containers = pod
        .require("containers")
        .and_then(|c| c.items())
        .map_err(|e| in_document(e, &workload))?;
    for node in containers {
        let name = node
            .require("name")
            .and_then(|n| n.str().map(str::to_string))
            .map_err(|e| in_document(e, &workload))?;
        out.push(Found {
            workload: workload.clone(),
            pod: pod.clone(),
            container: node,
            name,
        });
    }
    Ok(())
}

fn in_document(mut error: YamlError, workload: &Workload) -> YamlError {
    error.message = format!("{} (in {workload})", error.message);
    error
}

fn container(found: &Found<'_>) -> Result<Container, YamlError> {
    let read = || -> Result<Container, YamlError> {
        let node = &found.container;
        let mut ports = Vec::new();
        if let Some(list) = node.get("ports")? {
            for port in list.items()? {
                let number = port.require("containerPort")?.int_in(1, 65535)? as u16;
                let name = port.get("name")?.map(|n| n.str().map(str::to_string));
                ports.push(ContainerPort {
                    name: name.transpose()?,
                    number,
                });
            }
        }
        let grace_period = match found.pod.get("terminationGracePeriodSeconds")? {
            Some(n) => GracePeriod {
                seconds: n.int_in(0, i64::from(u32::MAX))? as u64,
                explicit: true,
            },
            None => GracePeriod {
                seconds: 30,
                explicit: false,
            },
        };
        let pre_stop = match node.get("lifecycle")? {
            Some(lifecycle) => lifecycle
                .get("preStop")?
                .map(|h| pre_stop(&h))
                .transpose()?,
            None => None,
        };
        Ok(Container {
            workload: found.workload.clone(),
            name: found.name.clone(),
            line: node.line(),
            ports,
            readiness: probe(node, ProbeKind::Readiness)?,
            liveness: probe(node, ProbeKind::Liveness)?,
            startup: probe(node, ProbeKind::Startup)?,
            pre_stop,
            grace_period,
        })
    };
    read().map_err(|e| in_document(e, &found.workload))
}

fn probe(container: &Node<'_>, kind: ProbeKind) -> Result<Option<Probe>, YamlError> {
    let Some(node) = container.get(kind.field())? else {
        return Ok(None);
    };
    let setting = |key: &str, default: u32, min: i64| -> Result<Setting, YamlError> {
        Ok(match node.get(key)? {
            Some(n) => Setting {
                value: n.int_in(min, i64::from(i32::MAX))? as u32,
                explicit: true,
            },
            None => Setting {
                value: default,
                explicit: false,
            },
        })
    };
    let success_threshold = setting("successThreshold", 1, 1)?;
    if kind != ProbeKind::Readiness && success_threshold.value != 1 {
        let at = node.require("successThreshold")?;
        return Err(at.error(format!(
            "must be 1 for a {kind} (Kubernetes rejects anything else)"
        )));
    }
    Ok(Some(Probe {
        kind,
        handler: handler(&node)?,
        line: node.line(),
        initial_delay_seconds: setting("initialDelaySeconds", 0, 0)?,
        period_seconds: setting("periodSeconds", 10, 1)?,
        timeout_seconds: setting("timeoutSeconds", 1, 1)?,
        success_threshold,
        failure_threshold: setting("failureThreshold", 3, 1)?,
    }))
}

fn port_ref(node: &Node<'_>) -> Result<PortRef, YamlError> {
    match node.int_or_str()? {
        IntOrStr::Int(n) if (1..=65535).contains(&n) => Ok(PortRef::Number(n as u16)),
        IntOrStr::Int(n) => Err(node.error(format!("port {n} is out of range (1 to 65535)"))),
        IntOrStr::Str(s) => match s.parse::<u16>() {
            // Kubernetes reads a quoted number as a number too.
            Ok(n) if n > 0 => Ok(PortRef::Number(n)),
            _ => Ok(PortRef::Name(s)),
        },
    }
}

fn handler(probe: &Node<'_>) -> Result<Handler, YamlError> {
    let mut handlers = Vec::new();
    if let Some(http) = probe.get("httpGet")? {
        let path = match http.get("path")? {
            Some(p) => p.str()?.to_string(),
            None => "/".into(),
        };
        let scheme = match http.get("scheme")? {
            Some(s) => s.str()?.to_ascii_uppercase(),
            None => "HTTP".into(),
        };
        let host = http.get("host")?.map(|h| h.str().map(str::to_string));
        handlers.push(Handler::HttpGet {
            path,
            port: port_ref(&http.require("port")?)?,
            scheme,
            host: host.transpose()?,
        });
    }
    if let Some(tcp) = probe.get("tcpSocket")? {
        handlers.push(Handler::TcpSocket {
            port: port_ref(&tcp.require("port")?)?,
        });
    }
    if let Some(exec) = probe.get("exec")? {
        handlers.push(Handler::Exec {
            command: string_list(&exec.require("command")?)?,
        });
    }
    if let Some(grpc) = probe.get("grpc")? {
        let service = grpc.get("service")?.map(|s| s.str().map(str::to_string));
        handlers.push(Handler::Grpc {
            port: grpc.require("port")?.int_in(1, 65535)? as u16,
            service: service.transpose()?,
        });
    }
    match handlers.len() {
        1 => Ok(handlers.remove(0)),
        0 => Err(probe.error("has no handler: give one of httpGet, tcpSocket, exec or grpc")),
        _ => Err(probe.error("has more than one handler (httpGet, tcpSocket, exec, grpc)")),
    }
}

fn string_list(node: &Node<'_>) -> Result<Vec<String>, YamlError> {
    node.items()?.iter().map(Node::scalar_text).collect()
}

fn pre_stop(hook: &Node<'_>) -> Result<PreStop, YamlError> {
    if let Some(sleep) = hook.get("sleep")? {
        let seconds = sleep.require("seconds")?.int_in(0, i64::from(u32::MAX))?;
        return Ok(PreStop::Sleep {
            seconds: seconds as f64,
            how: format!("sleep action, {seconds} s"),
        });
    }
    if let Some(exec) = hook.get("exec")? {
        let command = string_list(&exec.require("command")?)?;
        let how = format!("exec `{}`", command.join(" "));
        return Ok(match exec_sleep_seconds(&command) {
            Some(seconds) => PreStop::Sleep { seconds, how },
            None => PreStop::Other { how },
        });
    }
    if let Some(http) = hook.get("httpGet")? {
        let path = match http.get("path")? {
            Some(p) => p.str()?.to_string(),
            None => "/".into(),
        };
        return Ok(PreStop::Other {
            how: format!("httpGet {path}"),
        });
    }
    Err(hook.error("has no handler: give one of sleep, exec or httpGet"))
}

/// The seconds of an exec hook that only sleeps: `sleep 5`,
/// `/bin/sleep 5`, or `sh -c "sleep 5"`.
pub fn exec_sleep_seconds(command: &[String]) -> Option<f64> {
    let is_sleep = |program: &str| program == "sleep" || program.ends_with("/sleep");
    let is_shell = |program: &str| {
        ["sh", "bash", "ash", "dash"]
            .iter()
            .any(|s| program == *s || program.ends_with(&format!("/{s}")))
    };
    match command {
        [program, arg] if is_sleep(program) => sleep_arg(arg),
        [shell, flag, script] if is_shell(shell) && flag == "-c" => {
            let words: Vec<&str> = script.split_whitespace().collect();
            match words.as_slice() {
                [program, arg] if is_sleep(program) => sleep_arg(arg),
                _ => None,
            }
        }
        _ => None,
    }
}

/// `5`, `2.5`, `5s`, `1m` (GNU sleep's suffixes).
fn sleep_arg(arg: &str) -> Option<f64> {
    let (number, factor) = match arg.char_indices().last()? {
        (i, 's') => (&arg[..i], 1.0),
        (i, 'm') => (&arg[..i], 60.0),
        (i, 'h') => (&arg[..i], 3600.0),
        _ => (arg, 1.0),
    };
    let value: f64 = number.parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some(value * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOYMENT: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: api}
spec: {ports: [{port: 80, targetPort: http}]}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  template:
    spec:
      terminationGracePeriodSeconds: 45
      containers:
        - name: api
          ports:
            - name: http
              containerPort: 8000
          readinessProbe:
            httpGet: {path: /ready, port: http}
            periodSeconds: 5
          livenessProbe:
            httpGet: {path: /live, port: 8000}
          startupProbe:
            tcpSocket: {port: "8000"}
            failureThreshold: 30
          lifecycle:
            preStop:
              exec: {command: ["/bin/sh", "-c", "sleep 5"]}
        - name: sidecar
          image: envoy
"#;

    fn parse(text: &str, container: Option<&str>) -> Result<Container, YamlError> {
        let file = YamlFile::parse(Path::new("deploy.yaml"), text)?;
        from_file(
            &file,
            &Selection {
                container,
                workload: None,
            },
        )
    }

    #[test]
    fn reads_probes_with_kubernetes_defaults() {
        let c = parse(DEPLOYMENT, Some("api")).unwrap();
        assert_eq!(c.workload.to_string(), "Deployment/api (document 2)");
        assert_eq!(c.grace_period.seconds, 45);
        assert_eq!(c.named_port("http"), Some(8000));
        let ready = c.readiness.as_ref().unwrap();
        assert_eq!(ready.http_path(), Some("/ready"));
        assert_eq!(ready.period_seconds.value, 5);
        assert!(ready.period_seconds.explicit);
        assert_eq!(ready.timeout_seconds.to_string(), "1 (default)");
        assert_eq!(ready.failure_threshold.value, 3);
        let live = c.liveness.as_ref().unwrap();
        assert_eq!(live.failure_window(), Duration::from_secs(30));
        let startup = c.startup.as_ref().unwrap();
        assert_eq!(
            startup.handler,
            Handler::TcpSocket {
                port: PortRef::Number(8000)
            }
        );
        assert_eq!(startup.startup_budget(), Duration::from_secs(300));
        assert!(matches!(c.pre_stop, Some(PreStop::Sleep { seconds, .. }) if seconds == 5.0));
    }

    #[test]
    fn several_containers_need_a_name() {
        let err = parse(DEPLOYMENT, None).unwrap_err();
        assert!(err.message.contains("2 containers match"), "{err}");
        assert!(err.message.contains("`sidecar` in Deployment/api"), "{err}");
        let err = parse(DEPLOYMENT, Some("web")).unwrap_err();
        assert!(
            err.message.contains("no container matches container `web`"),
            "{err}"
        );
        let sidecar = parse(DEPLOYMENT, Some("sidecar")).unwrap();
        assert!(sidecar.readiness.is_none());
        assert_eq!(sidecar.grace_period.seconds, 45);
    }

    #[test]
    fn cronjob_pod_and_list_are_found() {
        let text = r#"
kind: List
items:
  - kind: CronJob
    metadata: {name: nightly}
    spec:
      jobTemplate:
        spec:
          template:
            spec:
              containers: [{name: job}]
  - kind: Pod
    metadata: {name: one}
    spec:
      containers: [{name: pod}]
"#;
        let job = parse(text, Some("job")).unwrap();
        assert_eq!(job.workload.kind, "CronJob");
        assert_eq!(job.grace_period.seconds, 30);
        assert!(!job.grace_period.explicit);
        assert_eq!(parse(text, Some("pod")).unwrap().workload.kind, "Pod");
    }

    #[test]
    fn bad_fields_name_line_document_and_field() {
        let text = DEPLOYMENT.replace("periodSeconds: 5", "periodSeconds: five");
        let err = parse(&text, Some("api")).unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with("deploy.yaml:22:28: `spec.template.spec.containers[0].readinessProbe.periodSeconds`: expected an integer"), "{shown}");
        assert!(
            shown.contains("(in Deployment/api (document 2))"),
            "{shown}"
        );
        let text = DEPLOYMENT.replace("periodSeconds: 5", "periodSeconds: 0");
        let err = parse(&text, Some("api")).unwrap_err();
        assert!(err.message.contains("out of range"), "{err}");
        let text = DEPLOYMENT.replace("failureThreshold: 30", "successThreshold: 2");
        let err = parse(&text, Some("api")).unwrap_err();
        assert!(
            err.message.contains("must be 1 for a startupProbe"),
            "{err}"
        );
        let text = DEPLOYMENT.replace("httpGet: {path: /live, port: 8000}", "periodSeconds: 3");
        let err = parse(&text, Some("api")).unwrap_err();
        assert!(err.message.contains("has no handler"), "{err}");
    }

    #[test]
    fn a_file_without_workloads_says_what_it_looked_for() {
        let err = parse("kind: ConfigMap\ndata: {}\n", None).unwrap_err();
        assert!(err.message.contains("helm template"), "{err}");
        let err = parse("- just\n- a list\n", None).unwrap_err();
        assert!(err.message.contains("not a Kubernetes object"), "{err}");
    }

    #[test]
    fn exec_sleep_forms() {
        let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(exec_sleep_seconds(&argv(&["sleep", "10"])), Some(10.0));
        assert_eq!(exec_sleep_seconds(&argv(&["/bin/sleep", "1.5"])), Some(1.5));
        assert_eq!(
            exec_sleep_seconds(&argv(&["sh", "-c", "sleep 1m"])),
            Some(60.0)
        );
        assert_eq!(
            exec_sleep_seconds(&argv(&["sh", "-c", "sleep 5 && nginx -s quit"])),
            None
        );
        assert_eq!(exec_sleep_seconds(&argv(&["nginx", "-s", "quit"])), None);
        assert_eq!(exec_sleep_seconds(&argv(&["sleep", "-1"])), None);
        assert_eq!(exec_sleep_seconds(&argv(&["sleep", "inf"])), None);
    }
}
