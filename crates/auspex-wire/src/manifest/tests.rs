//! Unit tests (filled below).
#[test]
fn debug_idna() {
    use idna::uts46::{AsciiDenyList, Hyphens, Uts46};
    for d in [
        "xn--zz.com",
        "1.اختبار",
        "☃.net",
        "xn--n3h.net",
        "a..b",
        "ab--cd.com",
        "XN--BCHER-KVA.example",
    ] {
        let (m, r) = Uts46::new().to_unicode(d.as_bytes(), AsciiDenyList::EMPTY, Hyphens::Allow);
        eprintln!("{d:?} -> {m:?} {:?}", r.is_ok());
    }
}
#[test]
fn fuzz_email_tmp() {
    let Ok(bytes) = std::fs::read("/tmp/mprobe/fuzz1.json") else {
        return;
    };
    let d = crate::json::parse(&bytes).unwrap();
    let mut bad = 0;
    let mut reasons = std::collections::BTreeMap::new();
    for case in d.get("cases").unwrap().as_array().unwrap() {
        let input = case.get("input").unwrap().as_str().unwrap();
        let want = case.get("normalized").and_then(|v| v.as_str());
        let got = super::email::normalize_email(input);
        match (want, &got) {
            (Some(w), Ok(g)) if w == g => {}
            (None, Err(e)) => {
                let r = case.get("error").unwrap().as_str().unwrap();
                if r != e.reason {
                    *reasons.entry((r.to_owned(), e.reason.clone())).or_insert(0) += 1;
                }
            }
            _ => {
                bad += 1;
                if bad < 40 {
                    eprintln!(
                        "MISMATCH {input:?}: py {want:?} {:?} rs {got:?}",
                        case.get("error")
                    );
                }
            }
        }
    }
    for ((a, b), n) in &reasons {
        eprintln!("REASON x{n}\n  py {a}\n  rs {b}");
    }
    eprintln!("total mismatches {bad}");
}
#[test]
fn fuzz_float_tmp() {
    let Ok(bytes) = std::fs::read("/tmp/mprobe/floats.json") else {
        return;
    };
    let d = crate::json::parse(&bytes).unwrap();
    let mut bad = 0;
    for pair in d.as_array().unwrap() {
        let a = pair.as_array().unwrap();
        let f: f64 = a[0].as_str().unwrap().parse().unwrap();
        let want = a[1].as_str().unwrap();
        let got = super::signing::pydantic_float(f);
        if got != want {
            bad += 1;
            if bad < 10 {
                eprintln!("{f:?}: py {want} rs {got}");
            }
        }
    }
    eprintln!("float mismatches {bad}");
}
#[test]
fn fuzz_mut_tmp() {
    for (file, profile) in [
        ("/tmp/mprobe/mut055.json", super::SdkProfile::V0_5_5),
        ("/tmp/mprobe/mut0667.json", super::SdkProfile::V0_6_67),
    ] {
        let Ok(bytes) = std::fs::read(file) else {
            continue;
        };
        let d = crate::json::parse(&bytes).unwrap();
        let mut bad = 0;
        for case in d.as_array().unwrap() {
            let text = case.get("text").unwrap().as_str().unwrap();
            let ok = case.get("ok") == Some(&crate::json::Value::Bool(true));
            let got = super::parse_manifest(text.as_bytes());
            let mismatch = match (&got, ok) {
                (Ok(m), true) => {
                    let dump = String::from_utf8(m.signing_input(profile).unwrap()).unwrap();
                    (dump != case.get("dump").unwrap().as_str().unwrap()).then(|| {
                        format!(
                            "DUMP\n  py {}\n  rs {}",
                            case.get("dump").unwrap().as_str().unwrap(),
                            dump
                        )
                    })
                }
                (Err(e), false) => None.filter(|_: &String| e.to_string().is_empty()),
                (Ok(_), false) => Some(format!(
                    "RUST ACCEPTS; py errors {:?}",
                    crate::json::canonical(case.get("errors").unwrap())
                )),
                (Err(e), true) => Some(format!("RUST REJECTS: {e}")),
            };
            if let Some(m) = mismatch {
                bad += 1;
                if bad <= 25 {
                    eprintln!("--- {text}\n{m}");
                }
            }
        }
        eprintln!("{file}: mismatches {bad}");
    }
}
