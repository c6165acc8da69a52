//! The Fly.io deploy files (fly.toml, litefs.yml, Dockerfile) agree with each other and with the
//! `blog` binary, and the real LiteFS v0.5.14 accepts litefs.yml.
//!
//! fly.toml is read with the `toml` crate and litefs.yml with `yaml-rust2`; the Dockerfile, which
//! has no such parser, with a small one for its instructions.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn repo_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

// --- fly.toml ------------------------------------------------------------------------------------

/// fly.toml, read by the `toml` crate.
struct FlyToml(toml::Table);

/// A scalar as text (strings unquoted), the way the checks compare them.
fn toml_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(n) => Some(n.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        _ => None,
    }
}

impl FlyToml {
    fn parse(text: &str) -> Self {
        FlyToml(text.parse().unwrap_or_else(|e| panic!("fly.toml: {e}")))
    }

    fn load() -> Self {
        Self::parse(&repo_file("fly.toml"))
    }

    /// `key` in the table at the dotted `table` path ("" for the top level). An array of tables
    /// on the way must have exactly one entry (`[[mounts]]`, `[[http_service.checks]]`).
    fn get(&self, table: &str, key: &str) -> String {
        let mut here = &self.0;
        for part in table.split('.').filter(|p| !p.is_empty()) {
            here = match here.get(part) {
                Some(toml::Value::Table(t)) => t,
                Some(toml::Value::Array(items)) if items.len() == 1 => items[0]
                    .as_table()
                    .unwrap_or_else(|| panic!("fly.toml: [{part}] is not a table")),
                other => panic!("fly.toml: expected one [{table}], found {other:?}"),
            };
        }
        here.get(key)
            .and_then(toml_text)
            .unwrap_or_else(|| panic!("fly.toml: no `{key}` in [{table}]"))
    }

    fn env(&self, key: &str) -> String {
        self.get("env", key)
    }

    /// `key` in `[env]`, if it is set there.
    fn env_if_set(&self, key: &str) -> Option<String> {
        self.0.get("env")?.get(key).and_then(toml_text)
    }

    /// The tables of an array of tables (`[[services]]`), none if absent.
    fn tables<'a>(table: &'a toml::Table, key: &str) -> Vec<&'a toml::Table> {
        match table.get(key) {
            Some(toml::Value::Array(items)) => items.iter().filter_map(|i| i.as_table()).collect(),
            Some(toml::Value::Table(t)) => vec![t],
            _ => Vec::new(),
        }
    }

    /// Every port that Fly's proxy exposes: internal ports of [http_service] and [[services]], and
    /// the public ports of [[services.ports]].
    fn exposed_ports(&self) -> Vec<u16> {
        let port = |t: &toml::Table, key: &str| {
            t.get(key).map(|v| {
                v.as_integer()
                    .and_then(|n| u16::try_from(n).ok())
                    .unwrap_or_else(|| panic!("fly.toml: bad port {v:?}"))
            })
        };
        let mut ports = Vec::new();
        for service in Self::tables(&self.0, "http_service") {
            ports.extend(port(service, "internal_port"));
        }
        for service in Self::tables(&self.0, "services") {
            ports.extend(port(service, "internal_port"));
            for public in Self::tables(service, "ports") {
                ports.extend(port(public, "port"));
            }
        }
        ports
    }

    /// Whether `key` is a key anywhere in the file, at any depth.
    fn has_key_anywhere(&self, key: &str) -> bool {
        fn walk(value: &toml::Value, key: &str) -> bool {
            match value {
                toml::Value::Table(t) => t.iter().any(|(k, v)| k == key || walk(v, key)),
                toml::Value::Array(items) => items.iter().any(|v| walk(v, key)),
                _ => false,
            }
        }
        walk(&toml::Value::Table(self.0.clone()), key)
    }
}

// --- litefs.yml ----------------------------------------------------------------------------------

/// litefs.yml, read by `yaml-rust2` (a maintained YAML 1.2 parser; `serde_yaml` is unmaintained).
struct LitefsYml(yaml_rust2::Yaml);

/// A scalar as text, the way the checks compare them.
fn yaml_text(value: &yaml_rust2::Yaml) -> Option<String> {
    use yaml_rust2::Yaml;
    match value {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(n) => Some(n.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

impl LitefsYml {
    fn parse(text: &str) -> Self {
        let mut docs = yaml_rust2::YamlLoader::load_from_str(text)
            .unwrap_or_else(|e| panic!("litefs.yml: {e}"));
        assert_eq!(docs.len(), 1, "litefs.yml: one document");
        LitefsYml(docs.remove(0))
    }

    fn load() -> Self {
        Self::parse(&repo_file("litefs.yml"))
    }

    fn node(&self, key: &str) -> &yaml_rust2::Yaml {
        key.split('.').fold(&self.0, |here, part| &here[part])
    }

    fn get(&self, key: &str) -> String {
        self.try_get(key)
            .unwrap_or_else(|| panic!("litefs.yml: no `{key}`"))
    }

    fn try_get(&self, key: &str) -> Option<String> {
        yaml_text(self.node(key))
    }

    fn has_top_level(&self, key: &str) -> bool {
        !self.0[key].is_badvalue()
    }

    /// `(cmd, if-candidate)` of each `exec` entry, in order.
    fn exec(&self) -> Vec<(String, bool)> {
        self.0["exec"]
            .as_vec()
            .expect("litefs.yml: exec is a list")
            .iter()
            .map(|entry| {
                let cmd = yaml_text(&entry["cmd"]).expect("litefs.yml: exec entry without cmd");
                (cmd, entry["if-candidate"].as_bool() == Some(true))
            })
            .collect()
    }
}

// --- Dockerfile ----------------------------------------------------------------------------------

/// The instructions of the last stage (after the last FROM), continuation lines joined, as
/// `(INSTRUCTION, arguments)`.
fn final_stage(text: &str) -> Vec<(String, String)> {
    let mut instructions = Vec::new();
    let mut current = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        if current.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        if let Some(part) = line.strip_suffix('\\') {
            current.push_str(part);
            current.push(' ');
            continue;
        }
        current.push_str(line);
        instructions.push(std::mem::take(&mut current));
    }
    let last_from = instructions
        .iter()
        .rposition(|i| i.to_uppercase().starts_with("FROM "))
        .expect("Dockerfile: no FROM");
    instructions[last_from..]
        .iter()
        .map(|i| {
            let (op, args) = i.split_once(char::is_whitespace).unwrap_or((i, ""));
            (op.to_uppercase(), args.trim().to_string())
        })
        .collect()
}

/// `(sources, destination, from-stage)` of each COPY in the final stage.
fn copies(stage: &[(String, String)]) -> Vec<(Vec<String>, String, Option<String>)> {
    stage
        .iter()
        .filter(|(op, _)| op == "COPY")
        .map(|(_, args)| {
            let words: Vec<&str> = args.split_whitespace().collect();
            let from = words
                .iter()
                .find_map(|w| w.strip_prefix("--from="))
                .map(str::to_string);
            let paths: Vec<&str> = words.into_iter().filter(|w| !w.starts_with("--")).collect();
            let (dest, srcs) = paths.split_last().expect("COPY without arguments");
            (
                srcs.iter()
                    .map(|s| s.trim_end_matches('/').to_string())
                    .collect(),
                dest.to_string(),
                from,
            )
        })
        .collect()
}

// --- helpers -------------------------------------------------------------------------------------

/// The port of `host:port`, `[v6]:port`, `:port` or `http://host:port/...`.
fn port_of(addr: &str) -> u16 {
    let without_scheme = addr.split_once("://").map_or(addr, |(_, rest)| rest);
    let hostport = without_scheme.split('/').next().unwrap();
    let (_, port) = hostport
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("no port in {addr:?}"));
    port.parse()
        .unwrap_or_else(|_| panic!("bad port in {addr:?}"))
}

fn host_of(addr: &str) -> String {
    let without_scheme = addr.split_once("://").map_or(addr, |(_, rest)| rest);
    let hostport = without_scheme.split('/').next().unwrap();
    hostport
        .rsplit_once(':')
        .map_or(hostport, |(h, _)| h)
        .to_string()
}

// --- test 1: the files agree ---------------------------------------------------------------------

#[test]
fn deploy_files_agree_with_each_other_and_with_the_binary() {
    let fly = FlyToml::load();
    let litefs = LitefsYml::load();
    let docker = final_stage(&repo_file("Dockerfile"));
    let docker_copies = copies(&docker);

    // The public HTTP service reaches the port the app listens on.
    let listen = fly.env("BLOG_LISTEN");
    let app_port = port_of(&listen);
    assert_eq!(
        host_of(&listen),
        "0.0.0.0",
        "BLOG_LISTEN must accept Fly's proxy: {listen}"
    );
    let internal_port: u16 = fly.get("http_service", "internal_port").parse().unwrap();
    assert_eq!(
        internal_port, app_port,
        "fly.toml internal_port vs BLOG_LISTEN {listen}"
    );
    assert_eq!(fly.get("http_service", "force_https"), "true");
    // Metrics have a listener of their own on the private address, which Fly scrapes.
    let metrics_listen = fly.env("BLOG_METRICS_LISTEN");
    let metrics_port: u16 = fly.get("metrics", "port").parse().unwrap();
    assert_eq!(
        metrics_port,
        port_of(&metrics_listen),
        "[metrics] port vs BLOG_METRICS_LISTEN"
    );
    assert_eq!(
        host_of(&metrics_listen),
        "fly-local-6pn",
        "metrics must bind the private address"
    );
    assert_eq!(fly.get("metrics", "path"), "/metrics");
    assert_eq!(fly.get("http_service.checks", "path"), "/healthz");

    // The volume holds LiteFS's data directory.
    let data_dir = litefs.get("data.dir");
    assert_eq!(
        fly.get("mounts", "destination"),
        data_dir,
        "[[mounts]] destination vs data.dir"
    );
    assert!(!fly.get("mounts", "source").is_empty());

    // The app's database is inside the FUSE mount, and the app watches that mount.
    let fuse_dir = litefs.get("fuse.dir");
    assert_ne!(fuse_dir, data_dir);
    let database = fly.env("BLOG_DATABASE");
    let db_parent = Path::new(&database)
        .parent()
        .expect("BLOG_DATABASE has no directory");
    assert_eq!(
        db_parent,
        Path::new(&fuse_dir),
        "BLOG_DATABASE {database} must be in {fuse_dir}"
    );
    assert_eq!(fly.env("BLOG_LITEFS_DIR"), fuse_dir);

    // The app talks to the local LiteFS API.
    let litefs_api = fly.env("BLOG_LITEFS_API");
    let litefs_port = port_of(&litefs.get("http.addr"));
    assert_eq!(
        port_of(&litefs_api),
        litefs_port,
        "BLOG_LITEFS_API vs litefs.yml http.addr"
    );
    assert!(
        ["localhost", "127.0.0.1", "[::1]"].contains(&host_of(&litefs_api).as_str()),
        "BLOG_LITEFS_API should be the local LiteFS: {litefs_api}"
    );

    // No LiteFS proxy: the app serves HTTP itself and forwards writes over its own RPC.
    assert!(
        !litefs.has_top_level("proxy"),
        "litefs.yml must not configure the LiteFS proxy"
    );

    // The lease: Consul, candidates only in the primary region, and a hostname that the app's
    // RPC template turns into the primary's private address.
    assert_eq!(litefs.get("lease.type"), "consul");
    assert_eq!(
        litefs.get("lease.candidate"),
        "${FLY_REGION == PRIMARY_REGION}"
    );
    assert!(
        !fly.get("", "primary_region").is_empty(),
        "fly.toml needs primary_region"
    );
    assert_eq!(litefs.get("lease.consul.url"), "${FLY_CONSUL_URL}");
    assert_eq!(litefs.get("lease.hostname"), "${FLY_MACHINE_ID}");
    let app = fly.get("", "app");
    let rpc_listen = fly.env("BLOG_RPC_LISTEN");
    let rpc_port = port_of(&rpc_listen);
    assert_eq!(
        host_of(&rpc_listen),
        "fly-local-6pn",
        "the RPC must bind the private address"
    );
    assert_eq!(
        fly.env("BLOG_PRIMARY_RPC"),
        format!("{{primary}}.vm.{app}.internal:{rpc_port}"),
        "BLOG_PRIMARY_RPC must name the primary's machine (its lease.hostname) in app {app}"
    );
    assert_eq!(port_of(&litefs.get("lease.advertise-url")), litefs_port);
    assert!(
        litefs
            .get("lease.advertise-url")
            .contains(".vm.${FLY_APP_NAME}.internal")
    );

    // Neither the RPC nor the LiteFS API is public.
    let exposed = fly.exposed_ports();
    assert!(
        exposed.contains(&app_port),
        "the app's port is not exposed: {exposed:?}"
    );
    assert!(
        !exposed.contains(&rpc_port),
        "RPC port {rpc_port} must not be exposed: {exposed:?}"
    );
    assert!(
        !exposed.contains(&litefs_port),
        "LiteFS port must not be exposed: {exposed:?}"
    );
    assert!(
        !exposed.contains(&metrics_port),
        "the metrics port must not be exposed: {exposed:?}"
    );
    // Secrets are never in fly.toml.
    for secret in ["BLOG_CLUSTER_SECRET", "BLOG_ADMIN_PASSWORD"] {
        assert!(
            !fly.has_key_anywhere(secret),
            "{secret} belongs in `fly secrets`"
        );
    }

    // The image: LiteFS is the entrypoint, reads /etc/litefs.yml (its default path, as no -config
    // is given), and the app finds its static files.
    let entrypoint = docker
        .iter()
        .rev()
        .find(|(op, _)| op == "ENTRYPOINT")
        .expect("no ENTRYPOINT");
    assert_eq!(entrypoint.1, r#"["litefs", "mount"]"#);
    let has_copy = |src: &str, dest: &str| {
        docker_copies.iter().any(|(srcs, d, from)| {
            from.is_none() && srcs.iter().any(|s| s == src) && d.trim_end_matches('/') == dest
        })
    };
    assert!(
        has_copy("litefs.yml", "/etc/litefs.yml"),
        "Dockerfile must copy litefs.yml to /etc"
    );
    assert!(
        docker_copies
            .iter()
            .any(|(srcs, _, from)| from.is_none() && srcs.iter().any(|s| s == "static")),
        "Dockerfile must copy static/"
    );
    assert!(
        docker_copies.iter().any(
            |(srcs, d, from)| from.as_deref() == Some("flyio/litefs:0.5")
                && srcs.iter().any(|s| s == "/usr/local/bin/litefs")
                && d == "/usr/local/bin/litefs"
        ),
        "Dockerfile must copy litefs from flyio/litefs:0.5"
    );
    let blog_installed = docker_copies.iter().any(|(srcs, d, from)| {
        from.is_some() && srcs.iter().any(|s| s.ends_with("/blog")) && d == "/usr/local/bin/blog"
    });
    assert!(
        blog_installed,
        "Dockerfile must install the blog binary as /usr/local/bin/blog"
    );

    // litefs.yml's exec: `blog migrate` on candidates only, then `blog serve`; both subcommands
    // exist in the binary this package builds.
    let exec = litefs.exec();
    assert_eq!(
        exec,
        vec![
            ("blog migrate".to_string(), true),
            ("blog serve".to_string(), false)
        ],
        "litefs.yml exec"
    );
    let blog = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_blog"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("cannot run the blog binary");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status, text)
    };
    for (cmd, _) in &exec {
        let mut words = cmd.split_whitespace();
        assert_eq!(
            words.next(),
            Some("blog"),
            "exec runs something other than blog: {cmd}"
        );
        let mut args: Vec<&str> = words.collect();
        args.push("--help");
        let (status, text) = blog(&args);
        assert!(
            status.success(),
            "`blog {}` failed ({status}): {text}",
            args.join(" ")
        );
        assert!(
            text.contains("Usage"),
            "`blog {}` printed no usage: {text:?}",
            args.join(" ")
        );
    }
    // Control: the binary does not answer every command with success.
    let (status, text) = blog(&["no-such-command", "--help"]);
    assert!(
        !status.success(),
        "`blog no-such-command --help` succeeded: {text}"
    );
}

// --- test 2: the real LiteFS accepts litefs.yml --------------------------------------------------

fn litefs_binary() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-test-deps");
    let out = Command::new(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout
        .lines()
        .last()
        .expect("install-test-deps printed nothing")
        .trim();
    let path = PathBuf::from(last);
    assert!(
        path.is_file(),
        "install-test-deps printed {last:?}, which is not a file"
    );
    path
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("blog-deploy-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A TCP port on 127.0.0.1 that nothing listens on (bound, then released).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Replaces `from` by `to` in `text`, which must contain it exactly once.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "litefs.yml should contain {from:?} once"
    );
    text.replacen(from, to, 1)
}

/// Inserts `line` right after the `lease:` line.
fn add_to_lease(config: &str, line: &str) -> String {
    replace_once(config, "\nlease:\n", &format!("\nlease:\n{line}\n"))
}

struct Outcome {
    output: String,
    exit: Option<i32>,
}

/// Runs `litefs mount -config <config>` with Fly's variables set to local values, until it exits
/// or prints `stop_at` (then it is killed), at most 30 s.
fn litefs_mount(litefs: &Path, dir: &Path, config: &str, region: &str, stop_at: &str) -> Outcome {
    let config_path = dir.join("litefs.yml");
    fs::write(&config_path, config).unwrap();
    let log_path = dir.join("litefs.out");
    let log = fs::File::create(&log_path).unwrap();
    let consul = format!("http://127.0.0.1:{}/blog-deploy-test/", closed_port());
    let mut child = Command::new(litefs)
        .arg("mount")
        .arg("-config")
        .arg(&config_path)
        .current_dir(dir)
        .env("FLY_APP_NAME", "blog-deploy-test")
        .env("FLY_MACHINE_ID", "148e00c0ffee00")
        .env("FLY_ALLOC_ID", "148e00c0ffee00")
        .env("FLY_REGION", region)
        .env("PRIMARY_REGION", "ams")
        .env("FLY_CONSUL_URL", &consul)
        .env_remove("LITEFS_CLOUD_TOKEN")
        .env_remove("FLY_LITEFS_CLUSTER_ID")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("cannot start litefs");
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        let output = fs::read_to_string(&log_path).unwrap_or_default();
        if output.contains(stop_at) || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = fs::read_to_string(&log_path).unwrap_or_default();
    // Never leave a mount behind (there should be none: these runs stop before mounting).
    let fuse = dir.join("fuse");
    if fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .contains(fuse.to_str().unwrap())
    {
        let _ = Command::new("fusermount3").arg("-uz").arg(&fuse).status();
        panic!(
            "litefs got as far as mounting {}:\n{output}",
            fuse.display()
        );
    }
    Outcome { output, exit }
}

#[test]
fn litefs_accepts_the_shipped_config() {
    let litefs = litefs_binary();
    let dir = temp_dir("litefs");

    // The shipped file, with three values moved off the machine's real paths and port (the keys
    // are untouched): the data and FUSE directories into the temp dir, and the API onto a free
    // loopback port so a local cluster on :20202 does not get in the way.
    let shipped = repo_file("litefs.yml");
    let mut config = replace_once(
        &shipped,
        "dir: \"/var/lib/litefs\"",
        &format!("dir: \"{}\"", dir.join("data").display()),
    );
    config = replace_once(
        &config,
        "dir: \"/litefs\"",
        &format!("dir: \"{}\"", dir.join("fuse").display()),
    );
    config = replace_once(&config, "addr: \":20202\"", "addr: \"127.0.0.1:0\"");

    let parse_errors = [
        "not found in type",
        "unknown field",
        "cannot unmarshal",
        "yaml:",
    ];
    // Consul is the step after parsing, validation, store and HTTP server set-up; the Consul URL
    // has a path (as Fly's has), so LiteFS registers a node there, and nothing listens: it fails
    // there, before it opens the data directory or mounts anything.
    let consul_step = "cannot init consul: cannot connect to consul";

    // 1. The shipped config, as on a machine in the primary region: it parses, validates, and
    //    LiteFS goes on to contact Consul.
    let run = litefs_mount(&litefs, &dir, &config, "ams", consul_step);
    for e in parse_errors {
        assert!(
            !run.output.contains(e),
            "litefs rejected litefs.yml ({e}):\n{}",
            run.output
        );
    }
    assert!(
        run.output.contains("Using Consul to determine primary"),
        "{}",
        run.output
    );
    assert!(
        run.output.contains(consul_step),
        "litefs did not reach Consul:\n{}",
        run.output
    );
    assert!(
        matches!(run.exit, None | Some(1)),
        "exit {:?}:\n{}",
        run.exit,
        run.output
    );

    // 2. `candidate: ${FLY_REGION == PRIMARY_REGION}` evaluates to a boolean, true in the primary
    //    region and false elsewhere. Probe: LiteFS refuses a database filter on candidates only.
    let probe = add_to_lease(&config, "  databases: [\"probe.db\"]");
    let refused = "cannot specify a database replication filter on candidate nodes";
    let run = litefs_mount(&litefs, &dir, &probe, "ams", refused);
    assert!(
        run.output.contains(refused),
        "not a candidate in PRIMARY_REGION:\n{}",
        run.output
    );
    let run = litefs_mount(&litefs, &dir, &probe, "fra", consul_step);
    assert!(
        !run.output.contains(refused),
        "a candidate outside PRIMARY_REGION:\n{}",
        run.output
    );
    assert!(run.output.contains(consul_step), "{}", run.output);

    // 3. Negative control: the same check on a config with an unknown key fails at parsing, so the
    //    checks above cannot pass vacuously.
    let bad = add_to_lease(&config, "  no-such-key: true");
    let run = litefs_mount(&litefs, &dir, &bad, "ams", consul_step);
    assert!(
        run.output
            .contains("field no-such-key not found in type main.LeaseConfig"),
        "litefs accepted an unknown key:\n{}",
        run.output
    );
    assert!(!run.output.contains(consul_step), "{}", run.output);
    assert_eq!(run.exit, Some(2), "{}", run.output);

    // Nothing was created in the data directory: LiteFS never got to open its store.
    assert!(
        !dir.join("data").exists(),
        "litefs opened its data directory"
    );
    let _ = fs::remove_dir_all(&dir);
}

// --- the readers themselves ---------------------------------------------------------------------

#[test]
fn the_readers_find_the_shapes_used_here() {
    let yaml = "# c\nfuse:\n  dir: \"/litefs\" # mount\nlease:\n  type: consul\n  candidate: ${A == B}\n  \
                consul:\n    url: \"${X}\"\nexec:\n  - cmd: \"a b\"\n    if-candidate: true\n  - cmd: c\n";
    let y = LitefsYml::parse(yaml);
    assert_eq!(y.get("fuse.dir"), "/litefs");
    assert_eq!(y.get("lease.candidate"), "${A == B}");
    assert_eq!(y.get("lease.consul.url"), "${X}");
    assert_eq!(y.try_get("lease.nothing"), None);
    assert!(y.has_top_level("lease") && !y.has_top_level("proxy"));
    assert_eq!(y.exec(), vec![("a b".into(), true), ("c".into(), false)]);

    let toml = "app = \"x\" # name\n[env]\n  A = \"1#2\"\n[http_service]\n  internal_port = 8\n\
                [[services]]\n  internal_port = 9\n  [[services.ports]]\n    port = 443\n\
                  [[services.ports]]\n    port = 80\n";
    let t = FlyToml::parse(toml);
    assert_eq!(t.get("", "app"), "x");
    assert_eq!(t.env("A"), "1#2");
    assert_eq!(t.exposed_ports(), vec![8, 9, 443, 80]);
    assert!(t.has_key_anywhere("port") && !t.has_key_anywhere("SECRET"));

    let docker = "FROM a AS b\nCOPY x /y\nFROM c\nRUN a \\\n  b\nCOPY --from=b /o/blog /usr/local/bin/blog\n";
    let stage = final_stage(docker);
    assert_eq!(stage[1], ("RUN".to_string(), "a  b".to_string()));
    let c = copies(&stage);
    assert_eq!(c.len(), 1);
    assert_eq!(
        c[0],
        (
            vec!["/o/blog".to_string()],
            "/usr/local/bin/blog".to_string(),
            Some("b".to_string())
        )
    );
    assert_eq!(port_of("http://localhost:20202"), 20202);
    assert_eq!(port_of(":20202"), 20202);
    assert_eq!(host_of("fly-local-6pn:7070"), "fly-local-6pn");
}

/// The Dockerfile caches dependencies with cargo-chef: the planner reduces the whole workspace to
/// a recipe, the builder cooks the dependencies of the same binary it then builds, and the build
/// context (what `.dockerignore` keeps) holds every workspace member.
#[test]
fn the_dockerfile_cooks_what_it_builds_from_the_whole_workspace() {
    let dockerfile = repo_file("Dockerfile");
    let runs: Vec<String> = dockerfile
        .lines()
        .filter_map(|l| l.trim().strip_prefix("RUN "))
        .map(str::to_owned)
        .collect();
    let has = |words: &[&str]| runs.iter().any(|r| words.iter().all(|w| r.contains(w)));
    assert!(has(&["cargo install cargo-chef", "--locked"]), "{runs:?}");
    assert!(
        has(&["cargo chef prepare", "--recipe-path recipe.json"]),
        "{runs:?}"
    );
    assert!(
        has(&[
            "cargo chef cook",
            "--release",
            "--bin blog",
            "--recipe-path recipe.json"
        ]),
        "the cook step must build the dependencies of the release binary: {runs:?}"
    );
    assert!(
        has(&["cargo build", "--release", "--locked", "--bin blog"]),
        "{runs:?}"
    );
    let cook = dockerfile.find("cargo chef cook").unwrap();
    let build = dockerfile.find("cargo build --release").unwrap();
    let sources = dockerfile[cook..build].contains("COPY . .");
    assert!(
        sources,
        "the sources come in after the cook step, before the build"
    );

    let manifest: toml::Table = repo_file("Cargo.toml").parse().unwrap();
    let members = manifest["workspace"]["members"].as_array().unwrap();
    let ignored: Vec<String> = repo_file(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_start_matches('/').to_owned())
        .collect();
    assert!(ignored.iter().any(|i| i == "target"), "{ignored:?}");
    for member in members.iter().filter_map(|m| m.as_str()) {
        let member = member.trim_start_matches("./");
        assert!(
            member == "." || !ignored.iter().any(|i| member.starts_with(i.as_str())),
            "{member} is a workspace member but .dockerignore leaves it out"
        );
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(member)
                .join("Cargo.toml")
                .exists()
        );
    }
}

// --- test: a stop leaves the app time to drain ---------------------------------------------------

/// On a stop or a deploy, Fly.io signals LiteFS (the image's entrypoint), which passes the signal
/// to the app and waits for it to drain its requests (up to the shutdown grace) before it
/// unmounts and gives up the lease; Fly.io kills the machine `kill_timeout` after its signal (5 s
/// unless set). So `kill_timeout` must leave the app its whole grace, and LiteFS time after it.
#[test]
fn fly_waits_for_the_app_to_drain_and_litefs_to_stop() {
    use clap::CommandFactory;
    let fly = FlyToml::load();
    let kill_timeout = fly.get("", "kill_timeout");
    let seconds: u64 = kill_timeout
        .strip_suffix('s')
        .unwrap_or(&kill_timeout)
        .parse()
        .unwrap_or_else(|_| panic!("fly.toml kill_timeout {kill_timeout:?} is not seconds"));
    // Both signals LiteFS forwards stop the app gracefully.
    let signal = fly.get("", "kill_signal");
    assert!(["SIGINT", "SIGTERM"].contains(&signal.as_str()), "{signal}");
    // The grace the app runs with on Fly.io: fly.toml's, else the binary's declared default (not
    // a parse, which would read this test process's own environment).
    let grace_ms = fly.env_if_set("BLOG_SHUTDOWN_GRACE_MS").unwrap_or_else(|| {
        let cli = blog::config::Cli::command();
        let arg = cli
            .get_arguments()
            .find(|a| a.get_long() == Some("shutdown-grace-ms"));
        let default = arg.and_then(|a| a.get_default_values().first().cloned());
        default
            .expect("--shutdown-grace-ms has a default")
            .to_string_lossy()
            .into_owned()
    });
    let grace = Duration::from_millis(grace_ms.parse().expect("a grace in ms"));
    let litefs_stop = Duration::from_secs(5);
    assert!(
        Duration::from_secs(seconds) >= grace + litefs_stop,
        "fly.toml kill_timeout {seconds}s leaves no room after the app's {grace:?} of grace"
    );
}
