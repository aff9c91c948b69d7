//! The documents agree with the code. Every name that README.md and
//! docs/*.md use is checked against the code that defines it, never against
//! a second list kept by hand:
//!
//! | what the docs name | how they mark it | checked against |
//! |---|---|---|
//! | config keys | ```` ```toml ```` blocks; code spans `` `[table] key` ``, `` `key = value` ``, `` `snake_case_key` `` | `cwpub::config::parse`, which rejects unknown keys |
//! | `cwpub test` case keys | ```` ```toml ```` blocks with `[[case]]`; the same code spans | `cwpub::harness::Suite::parse`, which rejects unknown keys |
//! | environment variables | `CWPUB_*` anywhere | `cwpub::config::CWPUB_VARS`; the variables of scripts, benchmarks and tests where those read them |
//! | commands and flags | `cwpub <command> --flag` in code spans and blocks (also `…/cwpub`, `cargo run --`, `$ cwpub` in text blocks); a code span that is only a `--flag` | `cwpub <command> --help` of the built binary |
//! | metrics | `cwpub_*` anywhere | the `# TYPE` lines of a running daemon's `/metrics` |
//! | drop reasons | code spans | `DropReason::all()` |
//!
//! Any other `snake_case` code span must be a name the code defines (a WIT
//! field, a field of a built-in guest's event, a function of the SDK or of
//! cwpub-emf, a benchmark, test or example); a name from outside cwpub is
//! written with its context (`opt-level = "s"`, `malloc_trim()`) or without
//! backticks, so a misspelt key cannot pass as a foreign word. Another tool's
//! flag is written with its command (`cargo build --target wasm32-wasip2`).
//!
//! The other way round, the one table of each kind holds everything the
//! code has: every `CWPUB_*` variable (the table headed "environment
//! variable"), every drop reason ("drop reason", and "EMF violation" for the
//! `invalid_emf:<violation>` reasons) and every metric family ("metric");
//! no other table lists them. Links between the documents resolve, anchors
//! included, and so do the documents (and quoted sections) that comments and
//! messages elsewhere in the repository cite.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use cwpub::config::CWPUB_VARS;
use cwpub::harness::Suite;
use cwpub::ledger::{DropReason, INVALID_EMF_PREFIX};
use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

use crate::support::test_guests::workspace_root;
use crate::support::{cli, daemon};

/// First header cells of the tables that must hold everything of their kind.
const ENV_TABLE: &str = "environment variable";
const REASON_TABLE: &str = "drop reason";
const VIOLATION_TABLE: &str = "EMF violation";
const METRIC_TABLE: &str = "metric";

#[test]
fn docs_name_only_what_the_code_has() {
    let docs = Doc::all();
    let code = Code::get();
    let findings: Vec<String> = docs.iter().flat_map(|d| check_names(d, code)).collect();
    assert!(
        findings.is_empty(),
        "the docs name things the code does not have:\n{}",
        findings.join("\n")
    );
}

#[test]
fn docs_tables_hold_every_variable_reason_and_metric() {
    let findings = check_tables(&Doc::all(), Code::get());
    assert!(
        findings.is_empty(),
        "the reference tables are not complete:\n{}",
        findings.join("\n")
    );
}

#[test]
fn docs_links_resolve() {
    let root = workspace_root();
    let mut findings = check_links(&Doc::all(), &root);
    findings.extend(check_citations(&root));
    assert!(
        findings.is_empty(),
        "broken links in the docs:\n{}",
        findings.join("\n")
    );
}

#[test]
fn docs_checker_catches_a_misspelt_key() {
    let code = Code::get();
    let wrong = Doc::new(
        "docs/wrong.md",
        "Set `spool_dri`, or `[delivery] spool_dri`, or `spool_dir = 5`.\n\n\
         ```toml\n[delivery]\nspool_dri = \"/var/lib/cwpub/spool\"\n```\n",
    );
    let findings = check_names(&wrong, code);
    assert_eq!(findings.len(), 4, "{findings:#?}");
    for (line, what) in [
        (1, "`spool_dri`"),
        (1, "`[delivery] spool_dri`"),
        (1, "`spool_dir = 5`"),
        (3, "unknown field `spool_dri`"),
    ] {
        assert!(
            findings
                .iter()
                .any(|f| f.starts_with(&format!("docs/wrong.md:{line}:")) && f.contains(what)),
            "{what} on line {line} not reported: {findings:#?}"
        );
    }
    let right = Doc::new(
        "docs/right.md",
        "Set `spool_dir`, or `[delivery] spool_dir`, or `spool_dir = \"/tmp/s\"`.\n\n\
         ```toml\n[delivery]\nspool_dir = \"/var/lib/cwpub/spool\"\n```\n",
    );
    assert_eq!(check_names(&right, code), Vec::<String>::new());
}

#[test]
fn docs_checker_catches_a_missing_drop_reason() {
    let code = Code::get();
    let table = |skip: &str| {
        let mut text = format!("| {REASON_TABLE} | cause | fix |\n|---|---|---|\n");
        for reason in &code.reasons {
            if reason != skip && !reason.starts_with(INVALID_EMF_PREFIX) {
                text.push_str(&format!("| `{reason}` | a cause | a fix |\n"));
            }
        }
        text.push_str(&format!("| `{INVALID_EMF_PREFIX}:<violation>` | | |\n"));
        text.push_str(&format!("\n| {VIOLATION_TABLE} | rule |\n|---|---|\n"));
        for reason in code.reasons.iter().filter(|r| *r != skip) {
            if let Some(kind) = reason.strip_prefix(&format!("{INVALID_EMF_PREFIX}:")) {
                text.push_str(&format!("| `{kind}` | a rule |\n"));
            }
        }
        Doc::new("docs/reasons.md", &text)
    };
    let reason_findings = |docs: &[Doc]| -> Vec<String> {
        check_tables(docs, code)
            .into_iter()
            .filter(|f| f.contains("drop reason") || f.contains("EMF violation"))
            .collect()
    };
    assert_eq!(reason_findings(&[table("")]), Vec::<String>::new());
    let missing = reason_findings(&[table("multiline_message")]);
    assert_eq!(missing.len(), 1, "{missing:#?}");
    assert!(missing[0].contains("`multiline_message`"), "{missing:#?}");
    let missing_emf = reason_findings(&[table("invalid_emf:missing_namespace")]);
    assert_eq!(missing_emf.len(), 1, "{missing_emf:#?}");
    assert!(
        missing_emf[0].contains("`missing_namespace`"),
        "{missing_emf:#?}"
    );
}

#[test]
fn docs_checker_catches_misspelt_commands_flags_variables_and_metrics() {
    let code = Code::get();
    let doc = Doc::new(
        "docs/wrong.md",
        "Run `cwpub chekc cwpub.toml`, then `cwpub invoke builtin:emf --hostnam x` and `--no-chek`.\n\n\
         ```sh\nCWPUB_REGOIN=eu-west-1 target/release/cwpub run \\\n  cwpub.toml --watch-it\n```\n\n\
         Watch `cwpub_job_runz_total`.\n",
    );
    let findings = check_names(&doc, code);
    for what in [
        "chekc",
        "--hostnam",
        "--no-chek",
        "CWPUB_REGOIN",
        "--watch-it",
        "cwpub_job_runz_total",
    ] {
        assert!(
            findings.iter().any(|f| f.contains(what)),
            "{what} not reported: {findings:#?}"
        );
    }
    assert_eq!(findings.len(), 6, "{findings:#?}");
}

// ---------------------------------------------------------------------------
// The documents

/// A document, by its path from the workspace root.
struct Doc {
    path: String,
    text: String,
}

impl Doc {
    fn new(path: &str, text: &str) -> Doc {
        Doc {
            path: path.to_owned(),
            text: text.to_owned(),
        }
    }

    /// README.md and every docs/*.md.
    fn all() -> Vec<Doc> {
        let root = workspace_root();
        let mut paths = vec![PathBuf::from("README.md")];
        let mut in_docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
            .expect("docs/")
            .map(|e| e.expect("docs/ entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "md"))
            .map(|p| p.strip_prefix(&root).expect("under root").to_path_buf())
            .collect();
        in_docs.sort();
        paths.extend(in_docs);
        paths
            .into_iter()
            .map(|p| {
                let text = std::fs::read_to_string(root.join(&p))
                    .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                Doc {
                    path: p.to_string_lossy().into_owned(),
                    text,
                }
            })
            .collect()
    }

    fn line_of(&self, offset: usize) -> usize {
        self.text[..offset].matches('\n').count() + 1
    }

    fn at(&self, line: usize) -> String {
        format!("{}:{line}", self.path)
    }
}

/// What a document holds, as Markdown.
#[derive(Default)]
struct Parsed {
    /// Inline code spans.
    spans: Vec<(usize, String)>,
    blocks: Vec<Block>,
    /// Link destinations.
    links: Vec<(usize, String)>,
    /// The anchors of its headings, as GitHub makes them.
    anchors: BTreeSet<String>,
    tables: Vec<Table>,
}

struct Block {
    line: usize,
    lang: String,
    text: String,
}

/// A table: the header row first.
struct Table {
    line: usize,
    rows: Vec<Vec<Cell>>,
}

#[derive(Default)]
struct Cell {
    text: String,
    codes: Vec<String>,
}

impl Table {
    fn header(&self) -> String {
        self.rows
            .first()
            .and_then(|r| r.first())
            .map(|c| c.text.trim().to_owned())
            .unwrap_or_default()
    }

    /// The code spans of the first cell of every body row.
    fn first_column(&self) -> impl Iterator<Item = &str> {
        self.rows
            .iter()
            .skip(1)
            .filter_map(|r| r.first())
            .flat_map(|c| c.codes.iter().map(String::as_str))
    }
}

fn parse(doc: &Doc) -> Parsed {
    let mut p = Parsed::default();
    let mut heading: Option<String> = None;
    let mut block: Option<Block> = None;
    let mut table: Option<Table> = None;
    let mut cell: Option<Cell> = None;
    let mut seen_slugs: BTreeMap<String, usize> = BTreeMap::new();
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    for (event, range) in Parser::new_ext(&doc.text, options).into_offset_iter() {
        let line = doc.line_of(range.start);
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::End(TagEnd::Heading(_)) => {
                let slug = slug(&heading.take().unwrap_or_default());
                let n = seen_slugs.entry(slug.clone()).or_insert(0);
                p.anchors.insert(match *n {
                    0 => slug,
                    n => format!("{slug}-{n}"),
                });
                *n += 1;
            }
            Event::Start(Tag::CodeBlock(kind)) => {
                let lang = match kind {
                    CodeBlockKind::Fenced(info) => {
                        info.split_whitespace().next().unwrap_or("").to_owned()
                    }
                    CodeBlockKind::Indented => String::new(),
                };
                block = Some(Block {
                    line,
                    lang,
                    text: String::new(),
                });
            }
            Event::End(TagEnd::CodeBlock) => p.blocks.extend(block.take()),
            Event::Start(Tag::Table(_)) => {
                table = Some(Table {
                    line,
                    rows: Vec::new(),
                })
            }
            Event::End(TagEnd::Table) => p.tables.extend(table.take()),
            Event::Start(Tag::TableHead | Tag::TableRow) => {
                if let Some(t) = &mut table {
                    t.rows.push(Vec::new());
                }
            }
            Event::Start(Tag::TableCell) => cell = Some(Cell::default()),
            Event::End(TagEnd::TableCell) => {
                if let (Some(t), Some(c)) = (&mut table, cell.take())
                    && let Some(row) = t.rows.last_mut()
                {
                    row.push(c);
                }
            }
            Event::Start(Tag::Link { dest_url, .. }) => p.links.push((line, dest_url.to_string())),
            Event::Text(text) => {
                if let Some(b) = &mut block {
                    b.text.push_str(&text);
                }
                if let Some(h) = &mut heading {
                    h.push_str(&text);
                }
                if let Some(c) = &mut cell {
                    c.text.push_str(&text);
                }
            }
            Event::Code(code) => {
                p.spans.push((line, code.to_string()));
                if let Some(h) = &mut heading {
                    h.push_str(&code);
                }
                if let Some(c) = &mut cell {
                    c.text.push_str(&code);
                    c.codes.push(code.to_string());
                }
            }
            _ => {}
        }
    }
    p
}

/// A heading's anchor as GitHub makes it: lower case, punctuation dropped,
/// spaces made hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------
// What the code has

/// Everything the checks compare the docs with, taken from the code.
struct Code {
    /// Subcommand → its flags, from `cwpub <command> --help`; `""` is `cwpub` itself.
    commands: BTreeMap<String, BTreeSet<String>>,
    /// Metric family names, as the `# TYPE` lines of a running daemon's `/metrics` give them, with their type.
    metrics: BTreeMap<String, String>,
    /// Every drop reason's label.
    reasons: BTreeSet<String>,
    /// `CWPUB_*` variables read by scripts, benchmarks and tests (not by cwpub itself).
    tool_vars: BTreeSet<String>,
    /// Other snake_case names the code defines: WIT names, the fields of the
    /// built-in guests' events, the SDK's functions and fields.
    names: BTreeSet<String>,
    config: Tables,
    cases: Tables,
}

impl Code {
    fn get() -> &'static Code {
        static CODE: OnceLock<Code> = OnceLock::new();
        CODE.get_or_init(|| {
            let root = workspace_root();
            let reasons = DropReason::all().map(|r| r.label().into_owned()).collect();
            let mut names = wit_names(&root.join("wit"));
            names.extend(sdk_names(&root.join("sdk/src")));
            names.extend(sdk_names(&root.join("emf/src")));
            names.extend(builtin_event_fields());
            names.extend(target_names(&root));
            Code {
                commands: commands(),
                metrics: metric_families(),
                reasons,
                tool_vars: tool_vars(&root),
                names,
                config: Tables::of_files(
                    Kind::Config,
                    &[
                        root.join("examples/cloudwatch.toml"),
                        root.join("examples/quickstart.toml"),
                        root.join("deploy/image/cwpub.toml"),
                    ],
                ),
                cases: Tables::of_files(Kind::Cases, &case_files(&root)),
            }
        })
    }

    /// Whether `name` (a snake_case word) is a name the code defines.
    fn knows(&self, name: &str) -> bool {
        self.config.accepts_anywhere(name)
            || self.cases.accepts_anywhere(name)
            || self.reasons.contains(name)
            || self
                .reasons
                .contains(&format!("{INVALID_EMF_PREFIX}:{name}"))
            || self.names.contains(name)
    }

    fn is_metric(&self, name: &str) -> bool {
        self.metrics.contains_key(name)
            || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
                name.strip_suffix(suffix)
                    .and_then(|family| self.metrics.get(family))
                    .is_some_and(|kind| kind == "histogram")
            })
    }
}

/// `cwpub --help`'s commands, and each command's flags.
fn commands() -> BTreeMap<String, BTreeSet<String>> {
    let help = |args: &[&str]| {
        let out = cli::cwpub().args(args).output().expect("run cwpub --help");
        assert!(out.status.success(), "cwpub {args:?} failed");
        String::from_utf8(out.stdout).expect("utf-8 help")
    };
    let top = help(&["--help"]);
    let mut commands = BTreeMap::new();
    commands.insert(String::new(), flags_of(&top));
    let listed = top
        .split("Commands:")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .expect("a Commands: section in cwpub --help");
    for line in listed.lines() {
        // A command starts its line at two spaces; descriptions continue deeper.
        if let Some(rest) = line.strip_prefix("  ")
            && !rest.starts_with(' ')
            && let Some(name) = rest.split_whitespace().next()
        {
            // `help` is clap's own: `cwpub help <command>`, no flags.
            let flags = match name {
                "help" => BTreeSet::new(),
                name => flags_of(&help(&[name, "--help"])),
            };
            commands.insert(name.to_owned(), flags);
        }
    }
    assert!(commands.contains_key("run"), "no commands in:\n{top}");
    commands
}

/// The flags a `--help` text lists (`-c, --config <KEY=VALUE>` → `-c`, `--config`).
fn flags_of(help: &str) -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    for line in help.lines().map(str::trim_start) {
        if !line.starts_with('-') {
            continue;
        }
        for word in line.split_whitespace() {
            let word = word.trim_end_matches(',');
            if !word.starts_with('-') {
                break;
            }
            flags.insert(word.to_owned());
        }
    }
    flags
}

/// The metric families of a daemon with every stage on (the CloudWatch sink
/// and a spool), from its `/metrics`. It sends nothing: its one job is not due.
fn metric_families() -> BTreeMap<String, String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = daemon::write_config(
        dir.path(),
        &format!(
            r#"
[sink]
kind = "cloudwatch"
region = "us-east-1"
endpoint_url = "http://127.0.0.1:9"

[delivery]
spool_dir = "{}"

[observe]
listen = "127.0.0.1:0"

[[jobs]]
name = "docs"
guest = "builtin:heartbeat"
schedule = "@every 1h"
log_group = "/cwpub/docs"
"#,
            dir.path().join("spool").display()
        ),
    );
    let mut child = daemon::cwpub()
        .args(["run", config.to_str().expect("utf-8 path")])
        .env_remove("CWPUB_OBSERVE_LISTEN")
        .env_remove("CWPUB_OBSERVE_ENABLED")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cwpub run");
    let lines = daemon::line_reader(child.stderr.take().expect("piped stderr"));
    let mut stderr = String::new();
    // Every stage has registered its metrics once the daemon says it started.
    let started = daemon::collect_until(
        &lines,
        &mut stderr,
        "cwpub started",
        Duration::from_secs(120),
    );
    let port = started
        .then(|| {
            let addr = stderr.split("address=").nth(1)?;
            let addr = addr.split_whitespace().next()?;
            addr.rsplit(':').next()?.parse::<u16>().ok()
        })
        .flatten();
    let metrics = port.map(|port| daemon::http_get(port, "/metrics"));
    daemon::signal(&child, "-TERM");
    let _ = child.wait();
    let (status, body) = metrics.unwrap_or_else(|| {
        panic!("the daemon did not start, or did not say where /metrics listens; stderr:\n{stderr}")
    });
    assert_eq!(status, 200, "{body}");
    let families: BTreeMap<String, String> = body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let (name, kind) = l.split_once(' ')?;
            Some((name.to_owned(), kind.trim().to_owned()))
        })
        .collect();
    assert!(
        families.contains_key("cwpub_spool_bytes"),
        "no spool metrics in:\n{body}"
    );
    families
}

/// `CWPUB_*` names that the workspace's scripts, benchmarks and tests read or
/// set (this file aside): variables of the tools, not of cwpub.
fn tool_vars(root: &Path) -> BTreeSet<String> {
    let mut vars = BTreeSet::new();
    let this_file = root
        .join("tests")
        .join(file!().rsplit('/').next().unwrap_or(file!()));
    let mut files = vec![root.join(".ci/run")];
    for dir in ["scripts", "host/benches", "host/build.rs", "tests"] {
        collect_files(&root.join(dir), &mut files);
    }
    for file in files {
        let code = file
            .extension()
            .is_none_or(|e| e == "rs" || e == "sh" || e == "py");
        if file == this_file || !code {
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(&file) {
            vars.extend(words(&text, "CWPUB_").map(|(_, w)| w.to_owned()));
        }
    }
    vars
}

fn collect_files(path: &Path, into: &mut Vec<PathBuf>) {
    if path.is_file() {
        into.push(path.to_path_buf());
    } else if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            if entry.file_name() != "target" {
                collect_files(&entry.path(), into);
            }
        }
    }
}

/// Every WIT name with a hyphen, in snake case (`invocation-id` → `invocation_id`),
/// as the Rust and Python bindings spell it.
fn wit_names(dir: &Path) -> BTreeSet<String> {
    let mut files = Vec::new();
    collect_files(dir, &mut files);
    let mut names = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read WIT");
        let declarations = text.lines().filter(|l| !l.trim_start().starts_with("//"));
        for word in
            declarations.flat_map(|l| l.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')))
        {
            if word.contains('-') && word.starts_with(|c: char| c.is_ascii_lowercase()) {
                names.insert(word.replace('-', "_"));
            }
        }
    }
    names
}

/// The function names and `pub` fields of a guest-facing crate (the SDK, cwpub-emf).
fn sdk_names(dir: &Path) -> BTreeSet<String> {
    let mut files = Vec::new();
    collect_files(dir, &mut files);
    let mut names = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read SDK source");
        for line in text.lines().map(str::trim) {
            let declared = line
                .split("fn ")
                .nth(1)
                .or_else(|| line.strip_prefix("pub ").filter(|rest| rest.contains(':')));
            if let Some(rest) = declared {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    names.insert(name);
                }
            }
        }
    }
    names
}

/// The keys of the events the built-in guests compose.
fn builtin_event_fields() -> BTreeSet<String> {
    fn keys(value: &serde_json::Value, into: &mut BTreeSet<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    into.insert(k.clone());
                    keys(v, into);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| keys(v, into)),
            _ => {}
        }
    }
    let mut fields = BTreeSet::new();
    for guest in ["builtin:heartbeat", "builtin:emf"] {
        let out = cli::cwpub()
            .args(["invoke", guest, "--region", "us-east-1", "--task-id", "t"])
            .output()
            .expect("run cwpub invoke");
        assert!(out.status.success(), "cwpub invoke {guest} failed");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let event: serde_json::Value = serde_json::from_str(line).expect("a JSON event");
            keys(&event, &mut fields);
        }
    }
    fields
}

/// The names of the benchmarks, integration test modules and examples, as
/// `cargo bench --bench …`, `cargo test -- …` and `--example …` take them.
fn target_names(root: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let manifest: toml::Table = std::fs::read_to_string(root.join("host/Cargo.toml"))
        .expect("host/Cargo.toml")
        .parse()
        .expect("host/Cargo.toml is TOML");
    if let Some(toml::Value::Array(benches)) = manifest.get("bench") {
        names.extend(
            benches
                .iter()
                .filter_map(|b| b.get("name")?.as_str().map(str::to_owned)),
        );
    }
    let mut files = Vec::new();
    collect_files(&root.join("tests"), &mut files);
    collect_files(&root.join("emf/examples"), &mut files);
    names.extend(
        files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "rs"))
            .filter_map(|f| f.file_stem()?.to_str().map(str::to_owned)),
    );
    names
}

/// The `cwpub test` case files in the repository.
fn case_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    collect_files(&root.join("examples"), &mut files);
    files.retain(|f| f.file_name().is_some_and(|n| n == "cwpub-test.toml"));
    assert!(!files.is_empty(), "no cwpub-test.toml in the repository");
    files
}

// ---------------------------------------------------------------------------
// Config and case-file keys, asked of the code's own readers

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// The daemon's config file.
    Config,
    /// A `cwpub test` case file.
    Cases,
}

/// The tables of one kind of file whose keys the reader checks. A table
/// counts when its reader refuses a made-up key there; tables whose keys are
/// free (`[jobs.config]`) are left out.
struct Tables {
    kind: Kind,
    /// Every table path of the repository's files of this kind (`""`: the
    /// top level) → whether it is an array of tables.
    all: BTreeMap<String, bool>,
    /// The paths whose reader refuses unknown keys.
    closed: BTreeSet<String>,
}

const MADE_UP_KEY: &str = "zz_no_such_key";

impl Tables {
    /// The tables of `files` (real files of this kind in the repository).
    fn of_files(kind: Kind, files: &[PathBuf]) -> Tables {
        let mut all = BTreeMap::new();
        all.insert(String::new(), false);
        for file in files {
            let text =
                std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let table: toml::Table = text
                .parse()
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            table_paths(&table, "", &mut all);
        }
        let mut tables = Tables {
            kind,
            all,
            closed: BTreeSet::new(),
        };
        tables.closed = tables
            .all
            .keys()
            .filter(|path| tables.unknown(path, MADE_UP_KEY, "{}"))
            .cloned()
            .collect();
        assert!(
            tables.closed.len() > 1,
            "no table of the {} reader refuses unknown keys: has the wording of its \
             \"unknown key\" message changed? (update `Tables::unknown` here)",
            kind.name()
        );
        tables
    }

    /// Whether a file with `key = value` in table `path` is refused for an unknown `key`.
    fn unknown(&self, path: &str, key: &str, value: &str) -> bool {
        self.problems(path, key, value).iter().any(|p| {
            p.contains(&format!("{key}: unknown key"))
                || p.contains(&format!("unknown field `{key}`"))
        })
    }

    /// The reader's problems with a file holding only `key = value` in table `path`.
    fn problems(&self, path: &str, key: &str, value: &str) -> Vec<String> {
        let mut text = String::new();
        if !path.is_empty() {
            // Open every enclosing table, arrays of tables as arrays.
            let parts: Vec<&str> = path.split('.').collect();
            for i in 1..=parts.len() {
                let prefix = parts[..i].join(".");
                if self.all.get(&prefix).copied().unwrap_or(false) {
                    text.push_str(&format!("[[{prefix}]]\n"));
                } else {
                    text.push_str(&format!("[{prefix}]\n"));
                }
            }
        }
        text.push_str(&format!("{key} = {value}\n"));
        self.read(&text)
    }

    /// The reader's problems with `text`, one line each.
    fn read(&self, text: &str) -> Vec<String> {
        let path = Path::new("docs-check.toml");
        match self.kind {
            Kind::Config => match cwpub::config::parse(text, path, &cwpub::env::from_pairs(&[])) {
                Ok(_) => Vec::new(),
                Err(e) => e.lines(),
            },
            Kind::Cases => match Suite::parse(text, path) {
                Ok(_) => Vec::new(),
                Err(e) => e.lines,
            },
        }
    }

    /// Whether table `path` takes `key`: `Some(true)` yes, `Some(false)` no,
    /// `None` when `path` is not a checked table of this kind.
    fn accepts(&self, path: &str, key: &str) -> Option<bool> {
        self.closed
            .contains(path)
            .then(|| !self.unknown(path, key, "{}"))
    }

    /// The checked table a docs pattern names: `delivery`, or `sinks.<name>`
    /// where `<…>` stands for any one name.
    fn matching(&self, pattern: &str) -> Option<String> {
        let wanted: Vec<&str> = pattern.split('.').collect();
        self.closed
            .iter()
            .find(|path| {
                let parts: Vec<&str> = path.split('.').collect();
                parts.len() == wanted.len()
                    && parts
                        .iter()
                        .zip(&wanted)
                        .all(|(p, w)| p == w || (w.starts_with('<') && w.ends_with('>')))
            })
            .cloned()
    }

    fn accepts_anywhere(&self, key: &str) -> bool {
        self.closed
            .iter()
            .any(|path| !self.unknown(path, key, "{}"))
    }

    /// The reader's complaints about `key = value` in table `path`, which takes `key`.
    fn value_problems(&self, path: &str, key: &str, value: &str) -> Vec<String> {
        self.problems(path, key, value)
            .into_iter()
            .filter(|p| is_about(p, key))
            .collect()
    }
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Config => "config file",
            Kind::Cases => "case file",
        }
    }
}

/// Every table path of `table` (array-of-tables flagged), under `prefix`.
fn table_paths(table: &toml::Table, prefix: &str, into: &mut BTreeMap<String, bool>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(t) => {
                into.entry(path.clone()).or_insert(false);
                table_paths(t, &path, into);
            }
            toml::Value::Array(items)
                if items.iter().all(toml::Value::is_table) && !items.is_empty() =>
            {
                into.insert(path.clone(), true);
                for item in items {
                    if let toml::Value::Table(t) = item {
                        table_paths(t, &path, into);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Whether a reader's problem line is about `key`: after the file, the job
/// or case and the table, it starts with the key (`[delivery] spool_dir: …`,
/// `sink.region "x": …`, `job #1: timeout "x": …`), rather than naming it in
/// a rule about another key.
fn is_about(problem: &str, key: &str) -> bool {
    let mut rest = problem.split_once(": ").map_or(problem, |(_, r)| r);
    for scope in ["job ", "case "] {
        if rest.starts_with(scope) {
            rest = rest.split_once(": ").map_or(rest, |(_, r)| r);
        }
    }
    if rest.starts_with('[') {
        rest = rest.split_once("] ").map_or(rest, |(_, r)| r);
    }
    let word_end = rest
        .find(|c: char| !(is_word_char(c) || c == '.'))
        .unwrap_or(rest.len());
    let first = &rest[..word_end];
    first == key || first.ends_with(&format!(".{key}"))
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The words starting with `prefix` in `text` (letters, digits, `_`), with their byte offsets.
fn words<'t>(text: &'t str, prefix: &'t str) -> impl Iterator<Item = (usize, &'t str)> + 't {
    text.match_indices(prefix).filter_map(move |(i, _)| {
        if text[..i].chars().next_back().is_some_and(is_word_char) {
            return None;
        }
        let len = text[i..]
            .find(|c: char| !is_word_char(c))
            .unwrap_or(text.len() - i);
        Some((i, &text[i..i + len]))
    })
}

// ---------------------------------------------------------------------------
// The checks

/// What `doc` names that the code does not have, one line each (`path:line: …`).
fn check_names(doc: &Doc, code: &Code) -> Vec<String> {
    let parsed = parse(doc);
    let mut findings = Vec::new();

    // Environment variables and metrics, wherever they appear.
    for (offset, var) in words(&doc.text, "CWPUB_") {
        let known = if doc.text[offset + var.len()..].starts_with('*') {
            CWPUB_VARS.iter().any(|v| v.starts_with(var))
        } else {
            CWPUB_VARS.contains(&var) || code.tool_vars.contains(var)
        };
        if !known {
            findings.push(format!(
                "{}: `{var}` is not an environment variable cwpub (or a script of this repository) reads",
                doc.at(doc.line_of(offset))
            ));
        }
    }
    for (offset, name) in words(&doc.text, "cwpub_") {
        let rest = &doc.text[offset + name.len()..];
        if rest.starts_with("::") || rest.starts_with('!') {
            continue; // a Rust path such as cwpub_guest::Guest
        }
        let known = if rest.starts_with('*') {
            code.metrics.keys().any(|m| m.starts_with(name))
        } else {
            code.is_metric(name)
        };
        if !known {
            findings.push(format!(
                "{}: `{name}` is not a metric of /metrics",
                doc.at(doc.line_of(offset))
            ));
        }
    }

    // Code spans.
    for (line, span) in &parsed.spans {
        let at = doc.at(*line);
        findings.extend(
            check_command_line(span, code)
                .into_iter()
                .map(|f| format!("{at}: {f}")),
        );
        findings.extend(check_lone_flag(span.trim(), code).map(|f| format!("{at}: {f}")));
        findings.extend(check_span(span.trim(), code).map(|f| format!("{at}: {f}")));
    }

    // Code blocks.
    for block in &parsed.blocks {
        match block.lang.as_str() {
            "toml" => findings.extend(
                check_toml_block(&block.text, code)
                    .into_iter()
                    .map(|f| format!("{}: {f}", doc.at(block.line))),
            ),
            "rust" | "python" | "wit" => {}
            lang => {
                for (n, line) in command_lines(&block.text) {
                    let line = if lang == "text" {
                        match line.strip_prefix("$ ") {
                            Some(command) => command,
                            None => continue,
                        }
                    } else {
                        line.as_str()
                    };
                    findings.extend(
                        check_command_line(line, code)
                            .into_iter()
                            .map(|f| format!("{}: {f}", doc.at(block.line + 1 + n))),
                    );
                }
            }
        }
    }
    findings
}

/// What is wrong with one code span that names a key, a value or a drop reason.
fn check_span(span: &str, code: &Code) -> Option<String> {
    // `[table] key` or `[table] key = value`
    if let Some(rest) = span.strip_prefix('[') {
        let (table, rest) = rest.split_once(']')?;
        let pattern = table.trim_start_matches('[');
        let setting = rest.trim_start_matches(']').trim();
        if setting.is_empty() {
            return None;
        }
        let (key, value) = match setting.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (setting, None),
        };
        if !is_key(key) {
            return None;
        }
        for tables in [&code.config, &code.cases] {
            let Some(table) = tables.matching(pattern) else {
                continue;
            };
            return match tables.accepts(&table, key) {
                Some(true) => value.and_then(|v| check_value(tables, &table, key, v, span)),
                _ => Some(format!("`{span}`: [{table}] has no key `{key}`")),
            };
        }
        return Some(format!(
            "`{span}`: [{pattern}] is not a table of the config file or of a case file \
             (write another file's tables in a ```toml block)"
        ));
    }
    // `key = value`
    if let Some((key, value)) = span.split_once('=') {
        let (key, value) = (key.trim(), value.trim());
        if !is_key(key) || value.is_empty() {
            return None;
        }
        for tables in [&code.config, &code.cases] {
            let taking: Vec<&String> = tables
                .closed
                .iter()
                .filter(|t| tables.accepts(t, key) == Some(true))
                .collect();
            if !taking.is_empty() {
                let complaints: Vec<String> = taking
                    .iter()
                    .filter_map(|t| check_value(tables, t, key, value, span))
                    .collect();
                return (complaints.len() == taking.len()).then(|| complaints.join("; "));
            }
        }
        return (key.contains('_') && !code.knows(key)).then(|| unknown_name(span, key));
    }
    // `invalid_emf:<kind>` and other reason labels
    if let Some(kind) = span.strip_prefix(&format!("{INVALID_EMF_PREFIX}:")) {
        return (!kind.starts_with('<') && !code.reasons.contains(span))
            .then(|| format!("`{span}` is not a drop reason"));
    }
    // `snake_case_name` (metrics, `cwpub_*`, are checked on their own)
    let checked = is_key(span) && span.contains('_') && !span.starts_with("cwpub_");
    (checked && !code.knows(span)).then(|| unknown_name(span, span))
}

fn unknown_name(span: &str, name: &str) -> String {
    format!(
        "`{span}`: `{name}` is no config or case-file key, drop reason, WIT name, event field or SDK name; \
         fix the spelling, or write a name from outside cwpub with its context (`name()`, `name = value`)"
    )
}

/// A lower-case identifier, as keys are.
fn is_key(word: &str) -> bool {
    word.starts_with(|c: char| c.is_ascii_lowercase())
        && word
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// What the reader says against `value` for `key` in `table`, unless the value is not TOML.
fn check_value(tables: &Tables, table: &str, key: &str, value: &str, span: &str) -> Option<String> {
    if format!("v = {value}").parse::<toml::Table>().is_err() {
        return None; // a placeholder such as `retention_days = N`
    }
    let complaints = tables.value_problems(table, key, value);
    (!complaints.is_empty()).then(|| format!("`{span}`: {}", complaints.join("; ")))
}

/// What is wrong with a ```toml block: a config or case file with keys its reader refuses.
fn check_toml_block(text: &str, code: &Code) -> Vec<String> {
    let table: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => return vec![format!("a ```toml block that is not TOML: {e}")],
    };
    let is = |tables: &Tables| {
        table
            .keys()
            .any(|k| k != "package" && tables.closed.contains(k.as_str()))
    };
    let tables = if table.contains_key("case") || table.contains_key("defaults") {
        &code.cases
    } else if is(&code.config) {
        &code.config
    } else {
        return Vec::new(); // another file (Cargo.toml, …)
    };
    tables
        .read(text)
        .into_iter()
        .filter(|p| p.contains("unknown key") || p.contains("unknown field"))
        .map(|p| format!("the {} in this ```toml block: {p}", tables.kind.name()))
        .collect()
}

/// The lines of a code block, with `\` continuations joined, and each line's index.
fn command_lines(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut continued = false;
    for (n, line) in text.lines().enumerate() {
        let (body, more) = match line.trim_end().strip_suffix('\\') {
            Some(body) => (body, true),
            None => (line, false),
        };
        match out.last_mut() {
            Some((_, joined)) if continued => {
                joined.push(' ');
                joined.push_str(body.trim());
            }
            _ => out.push((n, body.to_owned())),
        }
        continued = more;
    }
    out
}

/// What is wrong with the `cwpub` commands on one command line: an unknown
/// command, or a flag the command does not have.
fn check_command_line(line: &str, code: &Code) -> Vec<String> {
    let mut findings = Vec::new();
    // A shell comment (` # …`) is prose, not arguments.
    let line = line.find(" #").map_or(line, |i| &line[..i]);
    for segment in line.split(['|', ';', '&', '(', ')']) {
        let tokens: Vec<&str> = segment
            .split_whitespace()
            .map(|t| t.trim_matches(|c| matches!(c, '"' | '\'' | ',' | '[' | ']' | '{' | '}')))
            .filter(|t| !t.is_empty())
            .collect();
        let Some(start) = binary_position(&tokens) else {
            continue;
        };
        let args: Vec<&str> = tokens[start..]
            .iter()
            .copied()
            .take_while(|t| !t.starts_with('>') && !t.starts_with("2>"))
            .collect();
        let Some(first) = args.first() else {
            continue;
        };
        let command = if first.starts_with('-') {
            ""
        } else if first.chars().all(|c| c.is_ascii_lowercase()) {
            if !code.commands.contains_key(*first) {
                let known: Vec<&str> = code
                    .commands
                    .keys()
                    .map(String::as_str)
                    .filter(|c| !c.is_empty())
                    .collect();
                findings.push(format!(
                    "`cwpub {first}`: cwpub has no command `{first}` (cwpub --help lists {})",
                    known.join(", ")
                ));
                continue;
            }
            *first
        } else {
            continue; // a placeholder such as <command>
        };
        let flags = &code.commands[command];
        for arg in &args {
            if !arg.starts_with('-') || *arg == "--" || *arg == "-" {
                continue;
            }
            let flag = arg.split('=').next().unwrap_or(arg);
            if !flags.contains(flag) {
                let known: Vec<&str> = flags.iter().map(String::as_str).collect();
                findings.push(format!(
                    "`cwpub {command}` has no flag `{flag}` (cwpub {command} --help lists {})",
                    known.join(", ")
                ));
            }
        }
    }
    findings
}

/// A code span that is only a flag, perhaps with its value (`--no-check`,
/// `--delivery events_dropped=2`), names a flag of some cwpub command.
fn check_lone_flag(span: &str, code: &Code) -> Option<String> {
    let mut words = span.split_whitespace();
    let flag = words.next()?.split('=').next()?;
    if !flag.starts_with("--") || flag.len() < 3 || words.count() > 1 {
        return None;
    }
    (!code.commands.values().any(|f| f.contains(flag))).then(|| {
        format!("`{span}`: no cwpub command has the flag `{flag}` (write another tool's flag with its command)")
    })
}

/// Where the cwpub arguments start among `tokens`: after a path to the
/// binary (`target/release/cwpub`, `/usr/local/bin/cwpub`, `./cwpub`), after
/// `cwpub` where a command starts (`$`, `sudo`, `exec`, variable assignments
/// before it), or after `cargo run … --`.
fn binary_position(tokens: &[&str]) -> Option<usize> {
    for (i, token) in tokens.iter().enumerate() {
        let value = token.rsplit_once('=').map_or(*token, |(_, v)| v);
        if ["bin/cwpub", "release/cwpub", "debug/cwpub", "./cwpub"]
            .iter()
            .any(|path| value.ends_with(path))
        {
            return Some(i + 1);
        }
    }
    let mut i = 0;
    while let Some(t) = tokens.get(i) {
        let after = |word: &str| i > 0 && tokens[i - 1] == word;
        let prelude = matches!(*t, "$" | "sudo" | "exec" | "env" | "time" | "nice")
            || t.contains('=') && !t.starts_with('-')
            || *t == "-n" && after("nice")
            || t.parse::<i32>().is_ok() && after("-n");
        if !prelude {
            break;
        }
        i += 1;
    }
    match tokens.get(i) {
        Some(&"cwpub") => Some(i + 1),
        Some(&"cargo") if tokens.get(i + 1) == Some(&"run") => tokens[i..]
            .iter()
            .position(|t| *t == "--")
            .map(|p| i + p + 1),
        _ => None,
    }
}

/// The reference tables: complete, and the only ones of their kind.
fn check_tables(docs: &[Doc], code: &Code) -> Vec<String> {
    let parsed: Vec<(&Doc, Parsed)> = docs.iter().map(|d| (d, parse(d))).collect();
    let mut findings = Vec::new();
    let find = |header: &str, findings: &mut Vec<String>| -> Option<(String, BTreeSet<String>)> {
        let found: Vec<(&Doc, &Table)> = parsed
            .iter()
            .flat_map(|(d, p)| p.tables.iter().map(move |t| (*d, t)))
            .filter(|(_, t)| t.header().eq_ignore_ascii_case(header))
            .collect();
        match found.as_slice() {
            [(doc, table)] => Some((
                doc.at(table.line),
                table.first_column().map(str::to_owned).collect(),
            )),
            [] => {
                findings.push(format!("no table is headed \"{header}\""));
                None
            }
            more => {
                let places: Vec<String> = more.iter().map(|(d, t)| d.at(t.line)).collect();
                findings.push(format!(
                    "{} tables are headed \"{header}\" ({}): keep one",
                    more.len(),
                    places.join(", ")
                ));
                None
            }
        }
    };
    let mut require = |header: &str, wanted: &BTreeSet<String>, what: &str| {
        if let Some((at, listed)) = find(header, &mut findings) {
            for missing in wanted.difference(&listed) {
                findings.push(format!(
                    "{at}: the \"{header}\" table lacks {what} `{missing}`"
                ));
            }
            return Some(at);
        }
        None
    };

    let vars: BTreeSet<String> = CWPUB_VARS.iter().map(|v| (*v).to_owned()).collect();
    let env_at = require(ENV_TABLE, &vars, "the variable");
    let simple: BTreeSet<String> = code
        .reasons
        .iter()
        .filter(|r| !r.starts_with(INVALID_EMF_PREFIX))
        .cloned()
        .chain([format!("{INVALID_EMF_PREFIX}:<violation>")])
        .collect();
    let reasons_at = require(REASON_TABLE, &simple, "the drop reason");
    let violations: BTreeSet<String> = code
        .reasons
        .iter()
        .filter_map(|r| r.strip_prefix(&format!("{INVALID_EMF_PREFIX}:")))
        .map(str::to_owned)
        .collect();
    let violations_at = require(VIOLATION_TABLE, &violations, "the EMF violation");
    let metrics: BTreeSet<String> = code.metrics.keys().cloned().collect();
    let metrics_at = require(METRIC_TABLE, &metrics, "the metric");

    // No other table lists them (two or more in its first column).
    let kinds = [
        (&env_at, "environment variables", &vars),
        (&reasons_at, "drop reasons", &code.reasons),
        (&violations_at, "EMF violations", &violations),
        (&metrics_at, "metrics", &metrics),
    ];
    for (doc, p) in &parsed {
        for table in &p.tables {
            let at = doc.at(table.line);
            for (home, what, all) in &kinds {
                let listed = table.first_column().filter(|c| all.contains(*c)).count();
                if let Some(home) = home
                    && *home != at
                    && listed >= 2
                {
                    findings.push(format!(
                        "{at}: a second table of {what}; link to the one at {home} instead"
                    ));
                }
            }
        }
    }
    findings
}

/// Relative links that lead nowhere: a missing file, or an anchor no heading has.
fn check_links(docs: &[Doc], root: &Path) -> Vec<String> {
    let mut anchors: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    let parsed: Vec<(&Doc, Parsed)> = docs.iter().map(|d| (d, parse(d))).collect();
    for (doc, p) in &parsed {
        anchors.insert(root.join(&doc.path), p.anchors.clone());
    }
    let mut findings = Vec::new();
    for (doc, p) in &parsed {
        let here = root.join(&doc.path);
        let dir = here.parent().expect("a document is in a directory");
        for (line, link) in &p.links {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = link.split_once('#').unwrap_or((link, ""));
            let target = if file.is_empty() {
                here.clone()
            } else {
                normalize(&dir.join(file))
            };
            if !target.exists() {
                findings.push(format!("{}: `{link}`: no such file", doc.at(*line)));
                continue;
            }
            if anchor.is_empty() || target.extension().is_none_or(|e| e != "md") {
                continue;
            }
            let known = anchors.get(&target).cloned().unwrap_or_else(|| {
                let text = std::fs::read_to_string(&target).unwrap_or_default();
                parse(&Doc::new("", &text)).anchors
            });
            if !known.contains(anchor) {
                findings.push(format!(
                    "{}: `{link}`: no heading makes the anchor #{anchor}",
                    doc.at(*line)
                ));
            }
        }
    }
    findings
}

/// Comments and messages elsewhere in the repository that cite a document
/// (`docs/delivery.md`, or `docs/benchmarks.md, "A heading"`) that does not
/// exist, or a heading it does not have.
fn check_citations(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root).expect("workspace root").flatten() {
        let name = entry.file_name();
        let skip = [".git", "target", ".venv", "docs", "README.md"];
        if !skip.iter().any(|s| name == *s) {
            collect_files(&entry.path(), &mut files);
        }
    }
    let this_file = file!().rsplit('/').next().unwrap_or(file!());
    let mut findings = Vec::new();
    for file in files {
        if file.file_name().is_some_and(|n| n == this_file) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue; // not text
        };
        let shown = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .display()
            .to_string();
        for (offset, _) in text.match_indices("docs/") {
            let rest = &text[offset..];
            let Some(end) = rest.find(".md") else {
                continue;
            };
            let cited = &rest[..end + 3];
            if cited.contains(|c: char| !(c.is_ascii_alphanumeric() || "/-_.".contains(c))) {
                continue;
            }
            let line = text[..offset].matches('\n').count() + 1;
            let target = root.join(cited);
            if !target.exists() {
                findings.push(format!(
                    "{shown}:{line}: cites {cited}, which does not exist"
                ));
                continue;
            }
            // `docs/x.md, "Heading"` names a section.
            if let Some(quoted) = rest[end + 3..].strip_prefix(", \"")
                && let Some((heading, _)) = quoted.split_once('"')
            {
                let text = std::fs::read_to_string(&target).unwrap_or_default();
                if !parse(&Doc::new(cited, &text))
                    .anchors
                    .contains(&slug(heading))
                {
                    findings.push(format!(
                        "{shown}:{line}: cites the section \"{heading}\" of {cited}, which has no such heading"
                    ));
                }
            }
        }
    }
    findings
}

/// `a/b/../c` → `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}
