//! The Fly.io deploy files (fly.toml, litefs.yml, Dockerfile) agree with each other and with the
//! `blog` binary, and the real LiteFS v0.5.14 accepts litefs.yml.
//!
//! The files are read with small line-based parsers written for their shapes here (no YAML or TOML
//! crate): enough to find keys and values, not general parsers.

use std::collections::HashMap;
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

/// `(table, key, value)` for each `key = value` line; `table` is the name inside `[...]`/`[[...]]`
/// ("" before the first header). String values are unquoted.
fn parse_toml(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut table = String::new();
    for raw in text.lines() {
        let line = strip_comment(raw).trim().to_string();
        if line.is_empty() {
            continue;
        }
        if let Some(inner) = line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
            table = inner.trim().to_string();
        } else if let Some(inner) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = inner.trim().to_string();
        } else if let Some((k, v)) = line.split_once('=') {
            out.push((table.clone(), k.trim().to_string(), unquote(v.trim())));
        }
    }
    out
}

struct FlyToml(Vec<(String, String, String)>);

impl FlyToml {
    fn load() -> Self {
        FlyToml(parse_toml(&repo_file("fly.toml")))
    }

    fn get(&self, table: &str, key: &str) -> String {
        let found: Vec<_> = self
            .0
            .iter()
            .filter(|(t, k, _)| t == table && k == key)
            .map(|(_, _, v)| v)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "fly.toml: expected one `{key}` in [{table}], found {found:?}"
        );
        found[0].clone()
    }

    fn env(&self, key: &str) -> String {
        self.get("env", key)
    }

    /// Every port that Fly's proxy exposes: internal ports of [http_service] and [[services]], and
    /// the public ports of [[services.ports]].
    fn exposed_ports(&self) -> Vec<u16> {
        self.0
            .iter()
            .filter(|(t, k, _)| {
                ((t == "http_service" || t == "services") && k == "internal_port")
                    || (t == "services.ports" && k == "port")
            })
            .map(|(_, _, v)| {
                v.parse()
                    .unwrap_or_else(|_| panic!("fly.toml: bad port {v:?}"))
            })
            .collect()
    }
}

// --- litefs.yml ----------------------------------------------------------------------------------

/// Scalars of a block-style YAML file as dotted paths: `fuse.dir`, `lease.consul.url`, and list
/// items by index: `exec.0.cmd`. Top-level keys with a nested block are listed with an empty value.
fn parse_yaml(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut counters: HashMap<String, usize> = HashMap::new();
    let path = |stack: &[(usize, String)], key: &str| {
        let mut parts: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).collect();
        parts.push(key);
        parts.join(".")
    };
    for raw in text.lines() {
        let line = strip_comment(raw);
        if line.trim().is_empty() {
            continue;
        }
        let mut indent = line.len() - line.trim_start().len();
        let mut rest = line.trim().to_string();
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        if let Some(item) = rest.strip_prefix("- ").map(str::to_string) {
            let parent = path(&stack, "");
            let n = counters.entry(parent).or_insert(0);
            let name = n.to_string();
            *n += 1;
            stack.push((indent, name));
            indent += 2;
            rest = item.trim().to_string();
            if !rest.contains(": ") && !rest.ends_with(':') {
                let p = stack
                    .iter()
                    .map(|(_, k)| k.as_str())
                    .collect::<Vec<_>>()
                    .join(".");
                out.push((p, unquote(&rest)));
                continue;
            }
        }
        let (k, v) = rest
            .split_once(':')
            .unwrap_or_else(|| panic!("litefs.yml: cannot read line {raw:?}"));
        let (k, v) = (k.trim(), v.trim());
        if v.is_empty() {
            out.push((path(&stack, k), String::new()));
            stack.push((indent, k.to_string()));
        } else {
            out.push((path(&stack, k), unquote(v)));
        }
    }
    out
}

struct LitefsYml(Vec<(String, String)>);

impl LitefsYml {
    fn load() -> Self {
        LitefsYml(parse_yaml(&repo_file("litefs.yml")))
    }

    fn get(&self, key: &str) -> String {
        self.try_get(key)
            .unwrap_or_else(|| panic!("litefs.yml: no `{key}`"))
    }

    fn try_get(&self, key: &str) -> Option<String> {
        let found: Vec<_> = self
            .0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v)
            .collect();
        assert!(
            found.len() <= 1,
            "litefs.yml: `{key}` appears {} times",
            found.len()
        );
        found.first().map(|v| v.to_string())
    }

    fn has_top_level(&self, key: &str) -> bool {
        self.0
            .iter()
            .any(|(k, _)| k == key || k.starts_with(&format!("{key}.")))
    }

    /// `(cmd, if-candidate)` of each `exec` entry, in order.
    fn exec(&self) -> Vec<(String, bool)> {
        (0..)
            .map_while(|i| {
                let cmd = self.try_get(&format!("exec.{i}.cmd"))?;
                let if_candidate = self.try_get(&format!("exec.{i}.if-candidate"));
                Some((cmd, if_candidate.as_deref() == Some("true")))
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

/// Drops a `#` comment that starts the line or follows whitespace, outside quotes.
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' && prev.is_whitespace() => return &line[..i],
            None => {}
        }
        prev = c;
    }
    line
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_string();
        }
    }
    v.to_string()
}

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

    // The public HTTP service reaches the port the app listens on; metrics come from there too.
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
    let metrics_port: u16 = fly.get("metrics", "port").parse().unwrap();
    assert_eq!(metrics_port, app_port, "[metrics] port vs BLOG_LISTEN");
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
    // Secrets are never in fly.toml.
    for secret in ["BLOG_CLUSTER_SECRET", "BLOG_ADMIN_PASSWORD"] {
        assert!(
            !fly.0.iter().any(|(_, k, _)| k == secret),
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

// --- the parsers themselves ----------------------------------------------------------------------

#[test]
fn line_parsers_read_the_shapes_used_here() {
    let yaml = "# c\nfuse:\n  dir: \"/litefs\" # mount\nlease:\n  type: consul\n  consul:\n    url: \"${X}\"\n\
                exec:\n  - cmd: \"a b\"\n    if-candidate: true\n  - cmd: c\nlog:\n  format: text\n";
    let y = parse_yaml(yaml);
    let get = |k: &str| y.iter().find(|(p, _)| p == k).map(|(_, v)| v.as_str());
    assert_eq!(get("fuse.dir"), Some("/litefs"));
    assert_eq!(get("lease.consul.url"), Some("${X}"));
    assert_eq!(get("exec.0.cmd"), Some("a b"));
    assert_eq!(get("exec.0.if-candidate"), Some("true"));
    assert_eq!(get("exec.1.cmd"), Some("c"));
    assert_eq!(get("exec.1.if-candidate"), None);
    assert_eq!(get("log.format"), Some("text"));

    let toml = "app = \"x\" # name\n[env]\n  A = \"1#2\"\n[[services]]\n  internal_port = 9\n\
                [[services.ports]]\n  port = 443\n";
    let t = parse_toml(toml);
    assert!(t.contains(&("".into(), "app".into(), "x".into())));
    assert!(t.contains(&("env".into(), "A".into(), "1#2".into())));
    assert_eq!(FlyToml(t).exposed_ports(), vec![9, 443]);

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

/// The Dockerfile's dependency layer builds against placeholder sources. Cargo refuses a manifest
/// whose declared targets have no file, so every `[[bench]]`, `[[bin]]` and `[[example]]` named in
/// Cargo.toml must get a placeholder there.
#[test]
fn the_dockerfile_dependency_layer_has_every_declared_target() {
    let manifest = repo_file("Cargo.toml");
    let dockerfile = repo_file("Dockerfile");
    let mut declared = Vec::new();
    let mut section = String::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_owned();
        } else if let Some(name) = line.strip_prefix("name = ") {
            let dir = match section.as_str() {
                "[[bench]]" => "benches",
                "[[example]]" => "examples",
                "[[bin]]" => "src/bin",
                _ => continue,
            };
            declared.push(format!("{dir}/{}.rs", name.trim_matches('"')));
        }
    }
    assert!(
        declared.contains(&"benches/forwarding.rs".to_owned()),
        "{declared:?}"
    );
    for path in declared {
        assert!(
            dockerfile.contains(&format!("> {path}")),
            "the Dockerfile's dependency layer must create {path}"
        );
    }
}
