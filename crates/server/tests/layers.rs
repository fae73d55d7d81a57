//! The server crate's top-level modules import one way: no module reaches, through `crate::`
//! paths, a module that reaches it back. The composition root (`app`) and the edges (`http`,
//! `server`) sit on top; nothing below them names them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the other top-level modules its files name as `crate::<module>`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).expect("below src");
            let first = rel.components().next().expect("a file name").as_os_str();
            let module = first
                .to_str()
                .expect("UTF-8 names")
                .trim_end_matches(".rs")
                .to_owned();
            let text = std::fs::read_to_string(&path).expect("sources are UTF-8");
            let deps: &mut BTreeSet<String> = graph.entry(module.clone()).or_default();
            for (i, _) in text.match_indices("crate::") {
                let name: String = text[i + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module {
                    deps.insert(name);
                }
            }
        }
    }
    graph
}

/// A cycle through `from`, if there is one.
fn cycle(
    graph: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    path: &mut Vec<String>,
) -> Option<Vec<String>> {
    for next in graph.get(from).into_iter().flatten() {
        if let Some(i) = path.iter().position(|p| p == next) {
            let mut c = path[i..].to_vec();
            c.push(next.clone());
            return Some(c);
        }
        path.push(next.clone());
        if let Some(c) = cycle(graph, next, path) {
            return Some(c);
        }
        path.pop();
    }
    None
}

#[test]
fn the_server_modules_import_one_way() {
    let graph = imports();
    assert!(
        graph.len() > 10 && graph["http"].contains("app"),
        "the scan found the modules: {graph:?}"
    );
    for module in graph.keys() {
        let found = cycle(&graph, module, &mut vec![module.clone()]);
        if let Some(c) = found {
            panic!("an import loop: {}", c.join(" → "));
        }
    }
}

#[test]
fn nothing_below_the_composition_root_names_it() {
    let graph = imports();
    let allowed: BTreeSet<&str> = ["http", "server", "fuzzing"].into();
    for (module, deps) in &graph {
        if deps.contains("app") {
            assert!(
                allowed.contains(module.as_str()),
                "{module} imports app; give it the services it uses instead"
            );
        }
    }
}
