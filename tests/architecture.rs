//! ARCHITECTURE.md's rules about imports, read from the source: which rooms each room may use
//! ("What each room may touch"), and no import circle between the files of `src/`. Reads the
//! `crate::` and `super::` paths of every file outside its `#[cfg(test)] mod tests`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each room and the rooms it may import from (itself always).
const MAY_USE: &[(&str, &[&str])] = &[
    ("domain", &[]),
    ("redact", &[]),
    ("error", &["redact"]),
    ("cli", &["domain"]),
    ("config", &["cli", "domain", "error", "redact"]),
    ("source", &["config", "domain", "error", "redact"]),
    ("store", &["config", "domain", "error", "redact"]),
    ("ops", &["domain", "error", "redact"]),
    ("reports", &["config", "domain", "error", "ops", "store"]),
    (
        "ingest",
        &[
            "config", "domain", "error", "ops", "redact", "source", "store",
        ],
    ),
    (
        "commands",
        &[
            "config", "domain", "error", "ingest", "ops", "redact", "reports", "source", "store",
        ],
    ),
];

/// Every module of `src/` (`store::details`; `""` for lib.rs) with its source outside tests.
fn modules() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    let root = dirs[0].clone();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let relative = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .to_string();
            let Some(stem) = relative.strip_suffix(".rs") else {
                continue;
            };
            let stem = stem.strip_suffix("/mod").unwrap_or(stem);
            let name = match stem {
                "lib" | "main" => String::new(),
                other => other.replace('/', "::"),
            };
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
            let code: String = code
                .lines()
                .map(|l| l.split("//").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            out.insert(name, code);
        }
    }
    out
}

/// The identifier path that starts at byte `at` (`a::b::{c, d}` gives `a::b`).
fn path_at(code: &str, at: usize) -> String {
    let rest = &code[at..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(rest.len());
    rest[..end].trim_end_matches(':').to_string()
}

/// The longest module that `path` names, or its first segment's room.
fn module_of(path: &str, modules: &BTreeMap<String, String>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|m| modules.contains_key(m))
}

/// Each module's imports of other modules (not its ancestors, which declare it).
fn imports(modules: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for (name, code) in modules {
        let parent = name.rsplit_once("::").map(|(p, _)| p).unwrap_or("");
        let mut found = BTreeSet::new();
        for (at, _) in code.match_indices("crate::") {
            found.extend(module_of(&path_at(code, at + 7), modules));
        }
        for (at, _) in code.match_indices("super::") {
            let rest = &code[at + 7..];
            let names: Vec<String> = if let Some(group) = rest.strip_prefix('{') {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                group.split(',').map(|n| path_at(n.trim(), 0)).collect()
            } else {
                vec![path_at(code, at + 7)]
            };
            for n in names {
                let full = if parent.is_empty() {
                    n
                } else {
                    format!("{parent}::{n}")
                };
                found.extend(module_of(&full, modules));
            }
        }
        found.retain(|m| m != name && !m.is_empty() && !name.starts_with(&format!("{m}::")));
        out.insert(name.clone(), found);
    }
    out
}

fn room(module: &str) -> &str {
    module.split("::").next().unwrap_or("")
}

#[test]
fn no_room_imports_a_room_it_may_not_use() {
    let modules = modules();
    let mut wrong = Vec::new();
    for (module, targets) in imports(&modules) {
        let Some((_, allowed)) = MAY_USE.iter().find(|(r, _)| *r == room(&module)) else {
            continue;
        };
        for target in targets {
            let to = room(&target);
            if to != room(&module) && !allowed.contains(&to) {
                wrong.push(format!("{module} -> {target}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports ARCHITECTURE.md forbids: {wrong:?}"
    );
    // The check sees imports at all: store reads domain, commands read store.
    let found = imports(&modules);
    assert!(found["store::details"].contains("domain::accounting"));
    assert!(found["store::details"].contains("store::summaries"));
}

#[test]
fn no_import_circle_between_the_files_of_src() {
    let graph = imports(&modules());
    // Depth-first search for a back edge.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(node) {
            Some(2) => return None,
            Some(1) => {
                let from = path.iter().position(|p| p == node).unwrap_or(0);
                let mut circle = path[from..].to_vec();
                circle.push(node.to_string());
                return Some(circle);
            }
            _ => {}
        }
        state.insert(node.to_string(), 1);
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, state, path) {
                return Some(circle);
            }
        }
        path.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        let circle = visit(node, &graph, &mut state, &mut Vec::new());
        assert!(circle.is_none(), "an import circle: {:?}", circle.unwrap());
    }
}
