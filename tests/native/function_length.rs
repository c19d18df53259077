//! The architecture rule "no function over ~80 lines in src/ without a reason written next to
//! it": every `fn` in src/ is at most [`MAX_LINES`] lines (its `fn` line to its closing brace at
//! the same indentation) unless a `// long: ` comment stands directly above it (or above its
//! doc comment and attributes).

use std::path::{Path, PathBuf};

const MAX_LINES: usize = 80;

/// A function over the limit: its name, first line (1-based) and length in lines.
#[derive(Debug, PartialEq)]
struct LongFn {
    name: String,
    line: usize,
    len: usize,
}

/// The `fn` name declared on this line, if the line starts an item `fn` (after visibility and
/// qualifiers such as `pub(crate) const async unsafe extern "C"`).
fn fn_name(line: &str) -> Option<&str> {
    let mut rest = line.trim_start();
    loop {
        if let Some(r) = rest.strip_prefix("fn ") {
            let name = r
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()?;
            return (!name.is_empty()).then_some(name);
        }
        let word_end = rest.find(' ')?;
        let word = &rest[..word_end];
        let qualifier = word.starts_with("pub")
            || matches!(word, "const" | "async" | "unsafe" | "extern" | "default")
            || (word.starts_with('"') && word.ends_with('"'));
        if !qualifier {
            return None;
        }
        rest = rest[word_end..].trim_start();
    }
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// Whether a `// long: ` comment stands above line `i`, skipping doc comments and attributes.
fn has_long_reason(lines: &[&str], i: usize) -> bool {
    let mut j = i;
    while j > 0 {
        j -= 1;
        let t = lines[j].trim_start();
        if t.starts_with("// long: ") {
            return true;
        }
        let skippable = t.starts_with("///") || t.starts_with("#[") || t.starts_with("#!");
        if !skippable {
            return false;
        }
    }
    false
}

/// The functions in `src` over `max` lines without a `// long: ` reason. A function's end is the
/// first later line at the `fn` line's indentation that starts with `}` (or the `fn` line itself
/// when it ends in `}`); a declaration without a body (`;` before any `{`) is skipped.
fn long_functions(src: &str, max: usize) -> Vec<LongFn> {
    let lines: Vec<&str> = src.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = fn_name(line) else { continue };
        let ind = indent(line);
        let signature_end = lines[i..]
            .iter()
            .position(|l| l.contains('{') || l.trim_end().ends_with(';'));
        let Some(signature_end) = signature_end.map(|k| i + k) else {
            continue;
        };
        if !lines[signature_end].contains('{') {
            continue; // a declaration without a body
        }
        let end = lines[i..].iter().enumerate().find_map(|(k, l)| {
            let t = l.trim_start();
            if k > 0 && indent(l) == ind && t.starts_with('}') {
                Some(i + k)
            } else if k == 0 && t.ends_with('}') {
                Some(i)
            } else {
                None
            }
        });
        let Some(end) = end else { continue };
        let len = end - i + 1;
        if len > max && !has_long_reason(&lines, i) {
            out.push(LongFn {
                name: name.to_string(),
                line: i + 1,
                len,
            });
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn function_length_detector_finds_a_long_function() {
    let body = "    let x = 1;\n".repeat(5);
    let long = format!("pub(crate) fn big(a: u32) -> u32 {{\n{body}    a\n}}\n");
    let found = long_functions(&long, 4);
    assert_eq!(
        found,
        vec![LongFn {
            name: "big".into(),
            line: 1,
            len: 8
        }]
    );
    assert!(long_functions(&long, 8).is_empty());
    let nested = format!(
        "impl A {{\n    /// Doc.\n    async fn inner(&self) {{\n{body}    }}\n}}\nfn short() {{}}\n"
    );
    let found = long_functions(&nested, 4);
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].name.as_str(), found[0].len), ("inner", 7));
    let excused = format!("// long: a table\n#[inline]\nfn big() {{\n{body}}}\n");
    assert!(long_functions(&excused, 4).is_empty());
    let trait_decl = "trait T {\n    fn f(&self);\n    fn g(&self) {}\n}\n";
    assert!(long_functions(trait_decl, 1).is_empty());
    assert_eq!(
        fn_name("    pub(crate) unsafe extern \"C\" fn go()"),
        Some("go")
    );
    assert_eq!(fn_name("    let f = fn_x();"), None);
}

#[test]
fn function_length_no_long_functions_in_src() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut report = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("read a source file");
        for f in long_functions(&text, MAX_LINES) {
            let rel = path
                .strip_prefix(env!("CARGO_MANIFEST_DIR"))
                .unwrap_or(path);
            report.push(format!(
                "{}:{} {} ({} lines)",
                rel.display(),
                f.line,
                f.name,
                f.len
            ));
        }
    }
    assert!(
        report.is_empty(),
        "functions over {MAX_LINES} lines without a `// long: ` reason above them:\n{}",
        report.join("\n")
    );
}
