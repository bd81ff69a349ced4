use super::*;

fn canon(text: &str) -> String {
    canonical(&parse_str(text).expect("valid JSON"))
}

#[test]
fn python_float_repr_layouts() {
    for (f, want) in [
        (0.1, "0.1"),
        (1.0, "1.0"),
        (100.0, "100.0"),
        (1e-5, "1e-05"),
        (0.0001, "0.0001"),
        (1e16, "1e+16"),
        (1e15, "1000000000000000.0"),
        (123456789.123, "123456789.123"),
        (-0.0, "-0.0"),
        (2.5e-8, "2.5e-08"),
        (f64::MAX, "1.7976931348623157e+308"),
        (5e-324, "5e-324"),
        (1e100, "1e+100"),
        (-1.5, "-1.5"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "Infinity"),
        (f64::NEG_INFINITY, "-Infinity"),
    ] {
        assert_eq!(python_float_repr(f), want, "{f:e}");
    }
}

#[test]
fn python_parser_semantics() {
    assert_eq!(canon("1.10"), "1.1");
    assert_eq!(canon("1E5"), "100000.0");
    assert_eq!(canon("1e400"), "Infinity");
    assert_eq!(canon("-0"), "0");
    assert_eq!(canon("-0.0"), "-0.0");
    assert_eq!(
        canon("[NaN, Infinity, -Infinity]"),
        "[NaN,Infinity,-Infinity]"
    );
    assert_eq!(
        canon("123456789012345678901234567890"),
        "123456789012345678901234567890"
    );
    // Duplicate keys: first position, last value.
    let v = parse_str(r#"{"b":1,"a":2,"b":3}"#).expect("valid");
    assert_eq!(pydantic_compact(&v), r#"{"b":3,"a":2}"#);
    assert_eq!(canon(r#""\ud83d\ude00""#), r#""\ud83d\ude00""#);
}

#[test]
fn parser_refusals_say_where() {
    let e = parse_str("{\n  \"a\": 1,\n  \"b\" 2}").expect_err("missing colon");
    assert_eq!((e.line, e.column), (3, 7));
    assert!(matches!(e.kind, ParseErrorKind::Unexpected { .. }));
    assert_eq!(
        parse_str("[1] x").expect_err("trailing").kind,
        ParseErrorKind::TrailingData
    );
    assert_eq!(
        parse_str("\"a\u{1}\"").expect_err("control").kind,
        ParseErrorKind::ControlCharacter('\u{1}')
    );
    assert_eq!(
        parse_str(r#""\ud800""#).expect_err("lone").kind,
        ParseErrorKind::LoneSurrogate(0xd800)
    );
    assert_eq!(
        parse_str("\u{feff}{}").expect_err("bom").kind,
        ParseErrorKind::Bom
    );
    assert_eq!(
        parse(b"\"\xff\"").expect_err("utf8").kind,
        ParseErrorKind::InvalidUtf8
    );
    assert_eq!(
        parse_str("1.").expect_err("dangling dot").kind,
        ParseErrorKind::TrailingData
    );
    assert_eq!(
        parse_str("01").expect_err("leading zero").kind,
        ParseErrorKind::TrailingData
    );
    assert_eq!(parse_str("").expect_err("empty").kind, ParseErrorKind::Eof);
    let deep = "[".repeat(MAX_DEPTH + 2);
    assert_eq!(
        parse_str(&deep).expect_err("deep").kind,
        ParseErrorKind::TooDeep
    );
    let long = "9".repeat(MAX_INT_DIGITS + 1);
    assert_eq!(
        parse_str(&long).expect_err("long int").kind,
        ParseErrorKind::IntTooLong(4301)
    );
    assert!(parse_str(&"9".repeat(MAX_INT_DIGITS)).is_ok());
}

#[test]
fn pydantic_layouts() {
    let v = parse_str(r#"{"b":[],"a":{"x":1e-5,"y":24,"z":"é\u007f\u2028\u0001"},"c":{}}"#)
        .expect("valid");
    assert_eq!(
        pydantic_compact(&v),
        "{\"b\":[],\"a\":{\"x\":0.00001,\"y\":24,\"z\":\"é\u{7f}\u{2028}\\u0001\"},\"c\":{}}"
    );
    assert_eq!(
        pydantic_indent(&v),
        "{\n  \"b\": [],\n  \"a\": {\n    \"x\": 0.00001,\n    \"y\": 24,\n    \"z\": \"é\u{7f}\u{2028}\\u0001\"\n  },\n  \"c\": {}\n}"
    );
    assert_eq!(pydantic_compact(&Value::Float(1e-6)), "1e-6");
    // pydantic-core 2.50 signs positive exponents (observed with the 0.5.5 venv).
    assert_eq!(pydantic_compact(&Value::Float(1e16)), "1e+16");
    assert_eq!(pydantic_compact(&Value::Float(1.5e300)), "1.5e+300");
    assert_eq!(pydantic_compact(&Value::Float(1.5e-7)), "1.5e-7");
    assert_eq!(pydantic_compact(&Value::Float(1e15)), "1000000000000000.0");
    // Ties between shortest digit strings: Python (and Ryu) pick the closest.
    assert_eq!(python_float_repr(1151919637618719.2), "1151919637618719.2");
    assert_eq!(python_float_repr(123989426642750.62), "123989426642750.62");
    assert_eq!(pydantic_compact(&Value::Float(8760.0)), "8760.0");
}

/// The parser keeps open containers on the heap: hostile nesting is refused
/// with an error on a small-stack thread (a server's worker thread), and the
/// deepest accepted value can be encoded and dropped there too.
#[test]
fn deep_nesting_needs_no_stack() {
    let run = |f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(f)
            .expect("spawn")
            .join()
            .expect("no overflow");
    };
    run(Box::new(|| {
        let deep = format!("{}{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
        let e = parse(deep.as_bytes()).expect_err("too deep");
        assert!(matches!(e.kind, ParseErrorKind::TooDeep));
        let deep = "[".repeat(100_000);
        assert!(matches!(
            parse(deep.as_bytes()).map_err(|e| e.kind),
            Err(ParseErrorKind::TooDeep)
        ));
    }));
    run(Box::new(|| {
        let ok = format!("{}1{}", "{\"a\":".repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        let v = parse(ok.as_bytes()).expect("exactly MAX_DEPTH deep");
        let again = canonical(&v);
        assert_eq!(again.len(), ok.len());
        drop(v);
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(parse(ok.as_bytes()).is_ok());
        let bad = format!("{}{}", "[".repeat(MAX_DEPTH + 2), "]".repeat(MAX_DEPTH + 2));
        assert!(parse(bad.as_bytes()).is_err());
    }));
}
