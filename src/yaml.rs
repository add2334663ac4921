//! YAML files read with positions: the reader behind the Kubernetes manifest
//! (`kube`) and the Prometheus rule file (`alerts`). Takes a file's text;
//! gives its documents as [`Node`]s that know their field path and line, so
//! every error names the file, the line and the field.
//!
//! The parser is `saphyr`: pure Rust, YAML 1.2, maintained, with a position
//! on every node and a bound on alias expansion ("billion laughs").
//! `serde_yaml` is archived, and a serde-derived model would lose the line
//! of a field that is present but wrong.

use std::fmt;
use std::path::{Path, PathBuf};

use saphyr::{LoadableYamlNode, MarkedYamlOwned, ScalarOwned, YamlDataOwned};

/// Largest file read (a rendered Helm chart is far smaller).
pub const MAX_BYTES: u64 = 4 * 1024 * 1024;

/// Deepest block nesting accepted. The parser bounds flow nesting itself;
/// block nesting deeper than this would exhaust the stack when the tree is
/// built or dropped, and no manifest or rule file comes near it.
const MAX_DEPTH: usize = 200;

/// A problem in a YAML file, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub file: PathBuf,
    /// 1-based line and column, when known.
    pub location: Option<(usize, usize)>,
    /// Dotted field path, e.g. `spec.template.spec.containers[0].ports`.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, column)) = self.location {
            write!(f, ":{line}:{column}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for YamlError {}

/// The documents of one YAML file.
#[derive(Debug)]
pub struct YamlFile {
    pub path: PathBuf,
    docs: Vec<MarkedYamlOwned>,
}

impl YamlFile {
    /// Read and parse `path` (at most [`MAX_BYTES`]).
    pub fn read(path: &Path) -> Result<YamlFile, YamlError> {
        let fail = |message: String| YamlError {
            file: path.to_path_buf(),
            location: None,
            field: None,
            message,
        };
        let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read file: {e}")))?;
        if !meta.is_file() {
            return Err(fail("is not a file".into()));
        }
        if meta.len() > MAX_BYTES {
            return Err(fail(format!(
                "is {} bytes; gonogo reads YAML files of at most {MAX_BYTES} bytes",
                meta.len()
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| fail(format!("cannot read file as UTF-8 text: {e}")))?;
        YamlFile::parse(path, &text)
    }

    /// Parse `text` as if read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<YamlFile, YamlError> {
        if let Some((line, depth)) = too_deep(text) {
            return Err(YamlError {
                file: path.to_path_buf(),
                location: Some((line, 1)),
                field: None,
                message: format!("nesting {depth} levels deep; gonogo reads at most {MAX_DEPTH}"),
            });
        }
        let docs = MarkedYamlOwned::load_from_str(text).map_err(|e| YamlError {
            file: path.to_path_buf(),
            location: Some((e.marker().line(), e.marker().col() + 1)),
            field: None,
            message: format!("not valid YAML: {}", e.info()),
        })?;
        Ok(YamlFile {
            path: path.to_path_buf(),
            docs,
        })
    }

    /// Each non-empty document with its 1-based number.
    pub fn documents(&self) -> Vec<(usize, Node<'_>)> {
        self.docs
            .iter()
            .enumerate()
            .filter(|(_, doc)| !is_null(doc))
            .map(|(i, doc)| {
                (
                    i + 1,
                    Node {
                        file: &self.path,
                        yaml: doc,
                        path: String::new(),
                    },
                )
            })
            .collect()
    }
}

/// A node inside a [`YamlFile`], with its field path.
#[derive(Debug, Clone)]
pub struct Node<'a> {
    file: &'a Path,
    yaml: &'a MarkedYamlOwned,
    path: String,
}

/// What kind of value a node holds, for messages.
fn describe(data: &YamlDataOwned<MarkedYamlOwned>) -> String {
    match data {
        YamlDataOwned::Value(ScalarOwned::Null) => "null".into(),
        YamlDataOwned::Value(ScalarOwned::Boolean(b)) => format!("the boolean {b}"),
        YamlDataOwned::Value(ScalarOwned::Integer(i)) => format!("the integer {i}"),
        YamlDataOwned::Value(ScalarOwned::FloatingPoint(f)) => format!("the number {f}"),
        YamlDataOwned::Value(ScalarOwned::String(s)) => format!("the string {s:?}"),
        YamlDataOwned::Sequence(_) => "a list".into(),
        YamlDataOwned::Mapping(_) => "a mapping".into(),
        YamlDataOwned::Tagged(tag, _) => format!("a value tagged {tag}"),
        YamlDataOwned::Representation(text, _, _) => format!("{text:?}"),
        YamlDataOwned::Alias(_) => "an alias".into(),
        YamlDataOwned::BadValue => "an unreadable value".into(),
    }
}

fn is_null(yaml: &MarkedYamlOwned) -> bool {
    matches!(yaml.data, YamlDataOwned::Value(ScalarOwned::Null))
}

impl<'a> Node<'a> {
    /// Dotted field path from the document root (empty for the root).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// 1-based line of the node.
    pub fn line(&self) -> usize {
        self.yaml.span.start.line()
    }

    /// An error at this node.
    pub fn error(&self, message: impl Into<String>) -> YamlError {
        YamlError {
            file: self.file.to_path_buf(),
            location: Some((self.line(), self.yaml.span.start.col() + 1)),
            field: (!self.path.is_empty()).then(|| self.path.clone()),
            message: message.into(),
        }
    }

    /// The node with any tag taken off (`!!str 8080`, custom tags).
    fn data(&self) -> &'a YamlDataOwned<MarkedYamlOwned> {
        let mut yaml = self.yaml;
        while let YamlDataOwned::Tagged(_, inner) = &yaml.data {
            yaml = inner;
        }
        &yaml.data
    }

    fn child(&self, yaml: &'a MarkedYamlOwned, segment: &str) -> Node<'a> {
        let path = if self.path.is_empty() || segment.starts_with('[') {
            format!("{}{segment}", self.path)
        } else {
            format!("{}.{segment}", self.path)
        };
        Node {
            file: self.file,
            yaml,
            path,
        }
    }

    /// The value under `key`; `None` when absent or null. An error when
    /// this node is not a mapping.
    pub fn get(&self, key: &str) -> Result<Option<Node<'a>>, YamlError> {
        let YamlDataOwned::Mapping(map) = self.data() else {
            return Err(self.error(format!(
                "expected a mapping with `{key}`, found {}",
                describe(self.data())
            )));
        };
        let found = map.iter().find(
            |(k, _)| matches!(&k.data, YamlDataOwned::Value(ScalarOwned::String(s)) if s == key),
        );
        Ok(found
            .filter(|(_, v)| !is_null(v))
            .map(|(_, v)| self.child(v, key)))
    }

    /// The value under `key`, which must be there.
    pub fn require(&self, key: &str) -> Result<Node<'a>, YamlError> {
        self.get(key)?
            .ok_or_else(|| self.error(format!("missing `{key}`")))
    }

    /// Whether this node is a mapping.
    pub fn is_mapping(&self) -> bool {
        matches!(self.data(), YamlDataOwned::Mapping(_))
    }

    /// The keys of a mapping, in file order (non-string keys are skipped).
    pub fn keys(&self) -> Result<Vec<String>, YamlError> {
        let YamlDataOwned::Mapping(map) = self.data() else {
            return Err(self.error(format!(
                "expected a mapping, found {}",
                describe(self.data())
            )));
        };
        Ok(map
            .keys()
            .filter_map(|k| match &k.data {
                YamlDataOwned::Value(ScalarOwned::String(s)) => Some(s.clone()),
                _ => None,
            })
            .collect())
    }

    /// The items of a list.
    pub fn items(&self) -> Result<Vec<Node<'a>>, YamlError> {
        match self.data() {
            YamlDataOwned::Sequence(items) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, item)| self.child(item, &format!("[{i}]")))
                .collect()),
            other => Err(self.error(format!("expected a list, found {}", describe(other)))),
        }
    }

    /// A string value. Numbers and booleans are not strings here: YAML
    /// would have read `8080` as a number, so the field means a number.
    pub fn str(&self) -> Result<&'a str, YamlError> {
        match self.data() {
            YamlDataOwned::Value(ScalarOwned::String(s)) => Ok(s),
            other => Err(self.error(format!("expected a string, found {}", describe(other)))),
        }
    }

    /// A scalar as text: strings as they are, numbers and booleans as
    /// written (label values, command arguments).
    pub fn scalar_text(&self) -> Result<String, YamlError> {
        match self.data() {
            YamlDataOwned::Value(ScalarOwned::String(s)) => Ok(s.clone()),
            YamlDataOwned::Value(ScalarOwned::Integer(i)) => Ok(i.to_string()),
            YamlDataOwned::Value(ScalarOwned::FloatingPoint(f)) => Ok(f.to_string()),
            YamlDataOwned::Value(ScalarOwned::Boolean(b)) => Ok(b.to_string()),
            other => Err(self.error(format!("expected a value, found {}", describe(other)))),
        }
    }

    /// An integer value.
    pub fn int(&self) -> Result<i64, YamlError> {
        match self.data() {
            YamlDataOwned::Value(ScalarOwned::Integer(i)) => Ok(*i),
            other => Err(self.error(format!("expected an integer, found {}", describe(other)))),
        }
    }

    /// An integer in `min..=max`.
    pub fn int_in(&self, min: i64, max: i64) -> Result<i64, YamlError> {
        let value = self.int()?;
        if value < min || value > max {
            return Err(self.error(format!("{value} is out of range ({min} to {max})")));
        }
        Ok(value)
    }

    /// Either an integer or a string (Kubernetes' `IntOrString`).
    pub fn int_or_str(&self) -> Result<IntOrStr, YamlError> {
        match self.data() {
            YamlDataOwned::Value(ScalarOwned::Integer(i)) => Ok(IntOrStr::Int(*i)),
            YamlDataOwned::Value(ScalarOwned::String(s)) => Ok(IntOrStr::Str(s.clone())),
            other => Err(self.error(format!(
                "expected a number or a name, found {}",
                describe(other)
            ))),
        }
    }
}

/// Kubernetes' `IntOrString`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntOrStr {
    Int(i64),
    Str(String),
}

/// The first line whose block nesting exceeds [`MAX_DEPTH`], with that
/// depth. Counts indentation plus compact indicators (`- - - x`), an upper
/// bound on the depth a line can open; the content of block scalars (`|`,
/// `>`) is text, not nesting, and is skipped.
fn too_deep(text: &str) -> Option<(usize, usize)> {
    let mut scalar_parent: Option<usize> = None;
    for (index, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        if let Some(parent) = scalar_parent {
            if line.trim().is_empty() || indent > parent {
                continue;
            }
            scalar_parent = None;
        }
        let mut rest = &line[indent..];
        let mut compact = 0;
        while let Some(after) = rest
            .strip_prefix("- ")
            .or_else(|| rest.strip_prefix("? "))
            .or_else(|| rest.strip_prefix(": "))
        {
            compact += 1;
            rest = after.trim_start_matches(' ');
        }
        let depth = indent + compact;
        if depth > MAX_DEPTH {
            return Some((index + 1, depth));
        }
        if opens_block_scalar(line) {
            scalar_parent = Some(indent);
        }
    }
    None
}

/// Whether a line ends with a block scalar indicator: `key: |`, `- >-`,
/// `key: |2+`.
fn opens_block_scalar(line: &str) -> bool {
    let code = line.split(" #").next().unwrap_or(line).trim_end();
    let tail = code.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '+');
    (tail.ends_with('|') || tail.ends_with('>'))
        && tail[..tail.len() - 1].ends_with([' ', ':', '-'])
        || tail == "|"
        || tail == ">"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> YamlFile {
        YamlFile::parse(Path::new("deploy.yaml"), text).expect("valid YAML")
    }

    #[test]
    fn documents_fields_and_lines() {
        let file = parse("a: 1\n---\n---\nkind: Pod\nspec:\n  ports:\n    - 8080\n    - http\n");
        let docs = file.documents();
        assert_eq!(docs.len(), 2, "the empty document is skipped");
        assert_eq!(docs[1].0, 3);
        let spec = docs[1].1.require("spec").unwrap();
        let ports = spec.require("ports").unwrap().items().unwrap();
        assert_eq!(ports[0].int_or_str().unwrap(), IntOrStr::Int(8080));
        assert_eq!(ports[1].int_or_str().unwrap(), IntOrStr::Str("http".into()));
        assert_eq!(ports[1].path(), "spec.ports[1]");
        assert_eq!(ports[1].line(), 8);
        let err = spec.require("missing").unwrap_err();
        assert_eq!(
            err.to_string(),
            "deploy.yaml:6:3: `spec`: missing `missing`"
        );
    }

    #[test]
    fn type_errors_name_the_field_and_what_was_found() {
        let file = parse("spec:\n  periodSeconds: \"ten\"\n  list: 3\n");
        let (_, root) = &file.documents()[0];
        let spec = root.require("spec").unwrap();
        let err = spec.require("periodSeconds").unwrap().int().unwrap_err();
        assert_eq!(
            err.to_string(),
            "deploy.yaml:2:18: `spec.periodSeconds`: expected an integer, found the string \"ten\""
        );
        let err = spec.require("list").unwrap().items().unwrap_err();
        assert!(err.message.contains("expected a list"), "{err}");
        let err = spec.require("periodSeconds").unwrap().get("x").unwrap_err();
        assert!(err.message.contains("expected a mapping"), "{err}");
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let err = YamlFile::parse(Path::new("x.yaml"), "a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.location.is_some(), "{err}");
        assert!(err.message.starts_with("not valid YAML"), "{err}");
    }

    #[test]
    fn hostile_nesting_and_aliases_are_refused_not_crashes() {
        let deep = "- ".repeat(100_000) + "x\n";
        let err = YamlFile::parse(Path::new("x.yaml"), &deep).unwrap_err();
        assert!(err.message.contains("nesting"), "{err}");
        let flow = "[".repeat(100_000) + &"]".repeat(100_000);
        assert!(YamlFile::parse(Path::new("x.yaml"), &flow).is_err());
        let mut laughs = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (prev, next) in ["a", "b", "c", "d", "e", "f", "g", "h", "i"]
            .iter()
            .zip(["b", "c", "d", "e", "f", "g", "h", "i", "j"])
        {
            laughs.push_str(&format!(
                "{next}: &{next} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        assert!(YamlFile::parse(Path::new("x.yaml"), &laughs).is_err());
    }

    #[test]
    fn block_scalar_text_is_not_nesting() {
        let json = " ".repeat(400) + "{\"deep\": 1}";
        let folded = " ".repeat(300) + "folded";
        let text = format!("data:\n  config.json: |\n{json}\n  other: >-\n{folded}\nnext: 1\n");
        let file = parse(&text);
        let (_, root) = &file.documents()[0];
        assert_eq!(root.require("next").unwrap().int().unwrap(), 1);
        let err = YamlFile::parse(
            Path::new("x.yaml"),
            &format!("a:\n{}b: 1\n", " ".repeat(300)),
        )
        .unwrap_err();
        assert!(err.message.contains("nesting 300 levels deep"), "{err}");
    }

    #[test]
    fn reading_a_missing_or_huge_file_says_so() {
        let err = YamlFile::read(Path::new("/nonexistent/deploy.yaml")).unwrap_err();
        assert!(err.message.contains("cannot read file"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.yaml");
        std::fs::write(&big, vec![b'#'; (MAX_BYTES + 1) as usize]).unwrap();
        let err = YamlFile::read(&big).unwrap_err();
        assert!(err.message.contains("at most"), "{err}");
    }
}
