//! The layering of `src/`: the graph of top-level modules (an edge a → b when a file under
//! `src/a` names `crate::b`) has no cycle. Read from the source text, so it needs no tool.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The top-level modules named after `crate::` in `code` (comments already removed), including
/// each name of a `crate::{a, b::c}` group.
fn crate_refs(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // names at brace depth 0 of the group
            let (mut depth, mut start) = (0, 0);
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.push(head(&group[start..j]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(head(&group[start..j]));
                        start = j + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.push(head(rest));
        }
    }
    out.retain(|n| !n.is_empty());
    out
}

/// The first identifier of a path.
fn head(path: &str) -> String {
    let p = path.trim_start();
    let end = p
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(p.len());
    p[..end].to_string()
}

fn without_comments(src: &str) -> String {
    src.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn collect(dir: &Path, top: Option<&str>, g: &mut Graph) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let module = top.map_or(name.clone(), str::to_string);
        if path.is_dir() {
            collect(&path, Some(&module), g);
        } else if path.extension().is_some_and(|e| e == "rs") && module != "lib" {
            let code = without_comments(&std::fs::read_to_string(&path).unwrap());
            let deps = g.entry(module.clone()).or_default();
            deps.extend(crate_refs(&code).into_iter().filter(|d| *d != module));
        }
    }
}

/// A cycle of `g` as a path a → b → … → a, if there is one (depth-first search).
fn find_cycle(g: &Graph) -> Option<Vec<String>> {
    fn visit(n: &str, g: &Graph, done: &mut BTreeSet<String>, path: &mut Vec<String>) -> bool {
        if let Some(i) = path.iter().position(|p| p == n) {
            path.drain(..i);
            path.push(n.to_string());
            return true;
        }
        if done.contains(n) {
            return false;
        }
        path.push(n.to_string());
        for d in g.get(n).into_iter().flatten() {
            if visit(d, g, done, path) {
                return true;
            }
        }
        path.pop();
        done.insert(n.to_string());
        false
    }
    let mut done = BTreeSet::new();
    for n in g.keys() {
        let mut path = Vec::new();
        if visit(n, g, &mut done, &mut path) {
            return Some(path);
        }
    }
    None
}

#[test]
fn src_module_graph_has_no_cycle() {
    let mut g = Graph::new();
    collect(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        None,
        &mut g,
    );
    assert!(
        g.contains_key("train") && g.contains_key("backend"),
        "{g:?}"
    );
    if let Some(c) = find_cycle(&g) {
        panic!("import cycle in src/: {}", c.join(" → "));
    }
    // the layering the crate docs describe
    for (m, not) in [
        ("train", ["cpu", "gpu", "reference"]),
        ("backend", ["cpu", "gpu", "train"]),
    ] {
        for n in not {
            assert!(!g[m].contains(n), "src/{m} imports crate::{n}");
        }
    }
}

#[test]
fn cycle_finder_reports_a_cycle_and_parses_groups() {
    let code = "use crate::{a::X, b::{c, d}, e};\nlet x = crate::f::g();";
    assert_eq!(crate_refs(code), ["a", "b", "e", "f"]);
    let mut g = Graph::new();
    for (a, b) in [("x", "y"), ("y", "z"), ("z", "x"), ("w", "x")] {
        g.entry(a.into()).or_default().insert(b.into());
    }
    let c = find_cycle(&g).expect("x → y → z → x");
    assert_eq!(c.first(), c.last());
    assert_eq!(c.len(), 4, "{c:?}");
    g.get_mut("z").unwrap().clear();
    assert_eq!(find_cycle(&g), None);
}
