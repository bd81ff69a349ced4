//! Differential test of the canonical JSON encoder and the parser against
//! CPython's `json` module: proptest generates values (nested objects, any
//! Unicode including astral-plane and control characters, doubles across the
//! whole range including NaN, infinities, -0.0 and subnormals, integers far
//! beyond 64 bits); Python builds the same object from a lossless description
//! and answers with `json.dumps(sort_keys=True, separators=(",", ":"))` and a
//! loose, unsorted, non-ASCII dump. We require byte equality with our
//! `canonical`, and that parsing Python's loose dump gives the same bytes again.
//!
//! The same cases also compare our Pydantic layouts (compact and indent=2) with
//! pydantic-core's dump of the object, run in the official SDK 0.5.5's virtual
//! environment (`scripts/python-peers.sh`; a missing environment fails the test
//! unless `AUSPEX_SKIP_INTEROP=1`, which falls back to `python3` and says that
//! the Pydantic comparison was not checked). The number of cases is 10,000
//! unless `PROPTEST_CASES` says otherwise.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

use auspex_wire::json::{self, Int, Object, Value};
use proptest::prelude::*;

struct Peer {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

static PEER: Mutex<Option<Peer>> = Mutex::new(None);

#[allow(clippy::print_stderr)] // says that a check was knowingly skipped
fn python() -> String {
    if let Ok(p) = std::env::var("AUSPEX_PYTHON_055") {
        return p;
    }
    let venv = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/py-0.5.5/bin/python"
    );
    if std::path::Path::new(venv).exists() {
        return venv.to_owned();
    }
    if std::env::var_os("AUSPEX_SKIP_INTEROP").is_some_and(|v| v == "1") {
        eprintln!("Pydantic layouts NOT CHECKED against pydantic-core: AUSPEX_SKIP_INTEROP=1");
        return "python3".to_owned();
    }
    panic!("{venv} is missing: run `bash scripts/python-peers.sh` (or AUSPEX_SKIP_INTEROP=1)");
}

struct Answer {
    canonical: String,
    loose: String,
    pydantic: Option<(String, String)>,
}

fn ask(tagged: &str) -> Answer {
    let mut guard = PEER.lock().unwrap_or_else(|e| e.into_inner());
    let peer = guard.get_or_insert_with(|| {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/canonical_peer.py"
        );
        let mut child = Command::new(python())
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 must be installed for the differential test");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Peer {
            _child: child,
            stdin,
            stdout,
        }
    });
    peer.stdin
        .write_all(format!("{tagged}\n").as_bytes())
        .expect("write to python");
    peer.stdin.flush().expect("flush");
    let mut line = String::new();
    peer.stdout.read_line(&mut line).expect("read from python");
    let answer = json::parse_str(line.trim_end()).expect("python answers JSON");
    let get = |k| answer.get(k).and_then(Value::as_str).map(str::to_owned);
    Answer {
        canonical: get("c").expect("canonical"),
        loose: get("l").expect("loose"),
        pydantic: get("p").zip(get("pi")),
    }
}

/// The lossless description the Python peer understands.
fn tagged(v: &Value) -> Value {
    let mut o = Object::new();
    let (t, val) = match v {
        Value::Null => ("n", None),
        Value::Bool(b) => ("b", Some(Value::Bool(*b))),
        Value::Int(i) => ("i", Some(Value::from(i.as_str()))),
        Value::Float(f) => ("f", Some(Value::from(format!("{:016x}", f.to_bits())))),
        Value::String(s) => ("s", Some(code_points(s))),
        Value::Array(items) => ("a", Some(Value::Array(items.iter().map(tagged).collect()))),
        Value::Object(members) => (
            "o",
            Some(Value::Array(
                members
                    .iter()
                    .map(|(k, v)| Value::Array(vec![code_points(k), tagged(v)]))
                    .collect(),
            )),
        ),
    };
    o.insert("t".into(), Value::from(t));
    if let Some(val) = val {
        o.insert("v".into(), val);
    }
    Value::Object(o)
}

fn code_points(s: &str) -> Value {
    Value::Array(
        s.chars()
            .map(|c| Value::from(u64::from(u32::from(c))))
            .collect(),
    )
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        // Biased towards the characters whose escaping differs between encoders.
        proptest::collection::vec(
            prop_oneof![
                Just('\u{0}'),
                Just('\u{1f}'),
                Just('\u{7f}'),
                Just('"'),
                Just('\\'),
                Just('/'),
                Just('\u{2028}'),
                Just('é'),
                Just('😀'),
                Just('\u{10ffff}'),
                Just('\u{fffe}'),
                any::<char>(),
                proptest::char::range('A', 'z'),
            ],
            0..12
        )
        .prop_map(|cs| cs.into_iter().collect()),
    ]
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        proptest::num::f64::ANY,
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        Just(1e-5),
        Just(1e16),
        Just(1e15),
        Just(5e-324),
        Just(f64::MAX),
        (-1e6f64..1e6),
        any::<u64>().prop_map(f64::from_bits),
    ]
}

fn integer() -> impl Strategy<Value = Int> {
    prop_oneof![
        any::<i64>().prop_map(Int::from),
        any::<u64>().prop_map(Int::from),
        ("-?[1-9][0-9]{0,80}").prop_map(|s| Int::from_decimal(&s).expect("digits")),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        integer().prop_map(Value::Int),
        float().prop_map(Value::Float),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((text(), inner), 0..6)
                .prop_map(|kvs| Value::Object(kvs.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(10_000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn canonical_json_matches_cpython(v in value()) {
        let answer = ask(&json::canonical(&tagged(&v)));
        prop_assert_eq!(&json::canonical(&v), &answer.canonical);
        let reparsed = json::parse_str(&answer.loose)
            .map_err(|e| TestCaseError::fail(format!("our parser refused Python's dump: {e}")))?;
        prop_assert_eq!(&json::canonical(&reparsed), &answer.canonical);
        if let Some((compact, indent)) = answer.pydantic {
            prop_assert_eq!(json::pydantic_compact(&v), compact);
            prop_assert_eq!(json::pydantic_indent(&v), indent);
        }
    }
}
