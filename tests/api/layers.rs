//! The crate's shape, checked: every `crate::…` path in a top-level module of
//! `src/` names a module that `docs/architecture.md` allows it to use (the fenced
//! `layers` block there), every module is in that table, and the table has no
//! cycle. Comments are not read: a doc link is not a dependency.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Arrows = BTreeMap<String, BTreeSet<String>>;

/// The allowed arrows: `module -> a, b, c` lines in the ```layers block.
fn allowed_arrows(doc: &str) -> Arrows {
    let block = doc
        .split("```layers")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/architecture.md has a ```layers block");
    block
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (module, targets) = line
                .split_once("->")
                .unwrap_or_else(|| panic!("not `module -> modules`: {line}"));
            let targets = targets
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect();
            (module.trim().to_owned(), targets)
        })
        .collect()
}

/// The top-level modules a source file names through `crate::`, outside comments.
fn imports(source: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or_default();
                for item in inner.split(',') {
                    let name = item.trim().split("::").next().unwrap_or_default();
                    if !name.is_empty() {
                        found.insert(name.to_owned());
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        }
    }
    found
}

/// Every arrow in `files` (module, path, source) that the table does not allow.
fn violations(files: &[(String, String, String)], arrows: &Arrows) -> Vec<String> {
    let mut wrong = Vec::new();
    for (module, path, source) in files {
        let Some(allowed) = arrows.get(module) else {
            wrong.push(format!(
                "{path}: module `{module}` is not in the layers table"
            ));
            continue;
        };
        for used in imports(source) {
            let everything = allowed.contains("*");
            if used != *module && !everything && !allowed.contains(&used) {
                wrong.push(format!("{path}: `{module}` may not use `{used}`"));
            }
        }
    }
    wrong
}

/// A cycle among the table's arrows, if there is one.
fn cycle(arrows: &Arrows) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        arrows: &Arrows,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in arrows.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, arrows, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    arrows
        .keys()
        .find_map(|node| visit(node, arrows, &mut Vec::new(), &mut done))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// (module, path, source) of every file under `src/` but `lib.rs` and `main.rs`.
fn crate_files(root: &Path) -> Vec<(String, String, String)> {
    let src = root.join("src");
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    paths.sort();
    paths
        .into_iter()
        .filter_map(|path| {
            let relative = path.strip_prefix(&src).unwrap();
            let first = relative.components().next()?.as_os_str().to_str()?;
            let module = first.strip_suffix(".rs").unwrap_or(first).to_owned();
            if module == "lib" || module == "main" {
                return None;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            Some((module, format!("src/{}", relative.display()), source))
        })
        .collect()
}

#[test]
fn every_import_follows_the_allowed_arrows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let arrows = allowed_arrows(&doc);
    let files = crate_files(root);
    assert!(files.len() > 50, "found only {} files", files.len());
    let wrong = violations(&files, &arrows);
    assert!(
        wrong.is_empty(),
        "arrows not allowed:\n{}",
        wrong.join("\n")
    );
    let listed: BTreeSet<&String> = arrows.keys().collect();
    let present: BTreeSet<&String> = files.iter().map(|(m, _, _)| m).collect();
    let stale: Vec<_> = listed.difference(&present).collect();
    assert!(
        stale.is_empty(),
        "the table names missing modules: {stale:?}"
    );
}

#[test]
fn the_allowed_arrows_point_one_way() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let mut arrows = allowed_arrows(&doc);
    // `*` (the composition module's "everything") is not an arrow to follow.
    for targets in arrows.values_mut() {
        targets.remove("*");
    }
    assert_eq!(cycle(&arrows), None);
    let loop_back: Arrows = [
        ("shop".to_owned(), ["db".to_owned()].into()),
        ("db".to_owned(), ["shop".to_owned()].into()),
    ]
    .into();
    assert!(cycle(&loop_back).is_some());
}

#[test]
fn a_planted_wrong_import_is_caught() {
    let arrows = allowed_arrows(
        "```layers\nhttp -> shop, error\nsocket -> shop\nshop -> error\nerror ->\n```",
    );
    let file = |module: &str, source: &str| {
        (
            module.to_owned(),
            format!("src/{module}/mod.rs"),
            source.to_owned(),
        )
    };
    let clean = [
        file(
            "http",
            "use crate::shop::Shop;\nuse crate::{error::Code, shop};",
        ),
        file(
            "shop",
            "use crate::error::Code;\n// see crate::http, a comment\n",
        ),
    ];
    assert!(violations(&clean, &arrows).is_empty());
    let planted = [
        file("shop", "use crate::http::error::ApiError;"),
        file("socket", "let x = crate::{shop::Shop, http::VOICE};"),
        file("agent", "use crate::shop::Shop;"),
    ];
    assert_eq!(
        violations(&planted, &arrows),
        [
            "src/shop/mod.rs: `shop` may not use `http`",
            "src/socket/mod.rs: `socket` may not use `http`",
            "src/agent/mod.rs: module `agent` is not in the layers table",
        ]
    );
}
