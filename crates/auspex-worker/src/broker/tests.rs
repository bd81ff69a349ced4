//! Protocol tests: every error code, the check order, the cap, the reply
//! layout, recording, and the socket framing.

use super::*;
use crate::broker::backend::BoxFuture;

/// Echoes the last message; fails on the content `fail`.
#[derive(Debug)]
struct Echo;

impl InferenceBackend for Echo {
    fn serving_version(&self) -> String {
        "test/1".into()
    }

    fn generate<'a>(
        &'a self,
        req: GenerateRequest<'a>,
    ) -> BoxFuture<'a, Result<Generation, BackendError>> {
        let last = req
            .messages
            .last()
            .and_then(|m| m.get("content"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Box::pin(async move {
            if last == "fail" {
                return Err(BackendError("model crashed".into()));
            }
            let mut m = Object::new();
            m.insert("role".into(), Value::from("assistant"));
            m.insert("content".into(), Value::from(format!("echo: {last}")));
            Ok(Generation {
                message: Value::Object(m),
                eval_count: 3,
            })
        })
    }
}

fn model() -> ServedModel {
    ServedModel {
        model_id: "tiny".into(),
        handle: "auspex-tiny".into(),
        gguf_path: PathBuf::from("/nonexistent/tiny.gguf"),
        gguf_sha256: "ab".repeat(32),
        size_bytes: 0,
    }
}

fn broker(policy: GenerationPolicy) -> Broker {
    Broker::new(model(), Arc::new(Echo), policy)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn ask(b: &Broker, line: &str) -> String {
    match rt().block_on(b.handle_line(line.as_bytes())) {
        Some(v) => reply_line(&v),
        None => String::new(),
    }
}

fn code(b: &Broker, line: &str) -> String {
    let reply = ask(b, line);
    let v = json::parse(reply.as_bytes()).expect("reply JSON");
    match v.get("error").and_then(Value::as_str) {
        Some(c) => c.to_owned(),
        None => "ok".into(),
    }
}

const GEN: &str =
    r#"{"op": "generate", "model": "tiny", "messages": [{"role": "user", "content": "hi"}]}"#;

#[test]
fn info_and_generate_replies_have_the_python_layout() {
    let b = broker(GenerationPolicy::greedy());
    assert_eq!(
        ask(&b, r#"{"op": "info"}"#),
        format!(
            "{{\"ok\": true, \"model\": \"tiny\", \"gguf_sha256\": \"{}\", \"backend_handle\": \"auspex-tiny\"}}\n",
            "ab".repeat(32)
        )
    );
    assert_eq!(
        ask(
            &b,
            r#"{"op":"generate","model":"tiny","messages":[{"role":"user","content":"h\u00e9"}],"options":{"num_predict":8}}"#
        ),
        "{\"ok\": true, \"message\": {\"role\": \"assistant\", \"content\": \"echo: h\\u00e9\"}, \"eval_count\": 3, \"model\": \"tiny\"}\n"
    );
    // info is answered without any check, even past the cap.
    assert_eq!(
        code(&b, r#"{"op": "info", "model": "other", "junk": 1}"#),
        "ok"
    );
}

#[test]
fn every_error_code_with_its_detail() {
    let b = broker(GenerationPolicy::greedy());
    for (line, want) in [
        ("{not json", "bad_request"),
        ("[1, 2]", "bad_request"),
        (r#"{"op": "chat"}"#, "bad_request"),
        (r#"{"model": "tiny"}"#, "bad_request"),
        (
            r#"{"op": "generate", "model": "tiny", "messages": []}"#,
            "bad_request",
        ),
        (
            r#"{"op": "generate", "model": "tiny", "messages": [{"role": "user"}]}"#,
            "bad_request",
        ),
        (
            r#"{"op": "generate", "model": "tiny", "messages": [{"role": 1, "content": "x"}]}"#,
            "bad_request",
        ),
        (
            r#"{"op": "generate", "model": "tiny", "messages": "hi"}"#,
            "bad_request",
        ),
        (
            r#"{"op": "generate", "model": "big", "messages": [{"role": "user", "content": "x"}]}"#,
            "unauthorized_model",
        ),
        (
            r#"{"op": "generate", "messages": [{"role": "user", "content": "x"}]}"#,
            "unauthorized_model",
        ),
        (
            r#"{"op": "generate", "model": "tiny", "messages": [{"role": "user", "content": "x"}], "options": {"top_k": 5}}"#,
            "params_rejected",
        ),
        (
            r#"{"op": "generate", "model": "tiny", "messages": [{"role": "user", "content": "fail"}]}"#,
            "backend_error",
        ),
    ] {
        assert_eq!(code(&b, line), want, "{line}");
    }
    assert_eq!(
        ask(&b, r#"{"op": "chat"}"#),
        "{\"ok\": false, \"error\": \"bad_request\", \"detail\": \"unknown op 'chat'\"}\n"
    );
    assert_eq!(
        ask(&b, r#"{"op": null}"#),
        "{\"ok\": false, \"error\": \"bad_request\", \"detail\": \"unknown op None\"}\n"
    );
    assert_eq!(
        ask(&b, "7"),
        "{\"ok\": false, \"error\": \"bad_request\", \"detail\": \"request must be a JSON object\"}\n"
    );
    assert!(ask(&b, "{oops").contains("\"detail\": \"invalid JSON: "));
    assert_eq!(
        ask(
            &b,
            r#"{"op": "generate", "model": "big", "messages": [{"role": "user", "content": "x"}]}"#
        ),
        "{\"ok\": false, \"error\": \"unauthorized_model\", \"detail\": \"this unit is authorized for 'tiny' only\"}\n"
    );
    assert_eq!(
        ask(&b, r#"{"op": "generate", "model": "tiny", "messages": []}"#),
        "{\"ok\": false, \"error\": \"bad_request\", \"detail\": \"messages must be a non-empty array\"}\n"
    );
    assert_eq!(
        ask(
            &b,
            r#"{"op": "generate", "model": "tiny", "messages": [{"role": "user"}]}"#
        ),
        "{\"ok\": false, \"error\": \"bad_request\", \"detail\": \"each message must be {role: str, content: str}\"}\n"
    );
    assert_eq!(
        ask(
            &b,
            r#"{"op": "generate", "model": "tiny", "messages": [{"role": "user", "content": "x"}], "options": {"temperature": 1}}"#
        ),
        "{\"ok\": false, \"error\": \"params_rejected\", \"detail\": \"temperature must be 0 (this experiment declared greedy decoding)\"}\n"
    );
    assert_eq!(
        ask(
            &b,
            r#"{"op": "generate", "model": "tiny", "messages": [{"role": "user", "content": "fail"}]}"#
        ),
        "{\"ok\": false, \"error\": \"backend_error\", \"detail\": \"model crashed\"}\n"
    );
}

#[test]
fn checks_run_cap_then_model_then_messages_then_options() {
    let b = broker(GenerationPolicy::greedy());
    let all_wrong = r#"{"op": "generate", "model": "big", "messages": [], "options": {"x": 1}}"#;
    let model_ok = r#"{"op": "generate", "model": "tiny", "messages": [], "options": {"x": 1}}"#;
    let messages_ok = r#"{"op": "generate", "model": "tiny", "messages": [{"role": "u", "content": "c"}], "options": {"x": 1}}"#;
    assert_eq!(code(&b, all_wrong), "unauthorized_model");
    assert_eq!(code(&b, model_ok), "bad_request");
    assert_eq!(code(&b, messages_ok), "params_rejected");
    // Rejections did not count toward the cap.
    assert_eq!(b.record().accepted, 0);
    for i in 0..MAX_REQUESTS {
        // Backend failures count, like successes.
        let line = if i % 2 == 0 {
            GEN.to_owned()
        } else {
            GEN.replace("\"hi\"", "\"fail\"")
        };
        let want = if i % 2 == 0 { "ok" } else { "backend_error" };
        assert_eq!(code(&b, &line), want, "request {i}");
    }
    assert_eq!(b.record().accepted, MAX_REQUESTS);
    // The cap comes first: before the model, messages and options checks.
    assert_eq!(code(&b, GEN), "caps_exceeded");
    assert_eq!(code(&b, all_wrong), "caps_exceeded");
    assert_eq!(
        ask(&b, GEN),
        "{\"ok\": false, \"error\": \"caps_exceeded\", \"detail\": \"per-unit request cap (256) reached\"}\n"
    );
    // …but not before the op: info still answers, unknown ops are bad.
    assert_eq!(code(&b, r#"{"op": "info"}"#), "ok");
    assert_eq!(code(&b, r#"{"op": "nope"}"#), "bad_request");
    assert_eq!(b.record().accepted, MAX_REQUESTS);
}

#[test]
fn distinct_chains_are_recorded_by_value_in_first_seen_order() {
    let policy = GenerationPolicy::from_block(
        &json::parse(br#"{"temperature": 0.7, "seed": 42, "top_p": 0.9}"#).expect("json"),
    )
    .expect("policy");
    let b = broker(policy);
    let with = |opts: &str| GEN.replace("]}", &format!("], \"options\": {opts}}}"));
    assert_eq!(code(&b, &with(r#"{"seed": 1}"#)), "ok");
    assert_eq!(code(&b, &with(r#"{"seed": 2}"#)), "ok");
    // Equal by value to the first (an explicit declared top_p, temperature
    // 0.7 as requested): not recorded again.
    assert_eq!(
        code(
            &b,
            &with(r#"{"seed": 1, "top_p": 0.9, "temperature": 0.7}"#)
        ),
        "ok"
    );
    // A rejected request records nothing.
    assert_eq!(
        code(&b, &with(r#"{"seed": 1, "top_p": 0.5}"#)),
        "params_rejected"
    );
    // A backend failure still ran with its chain: recorded.
    assert_eq!(
        code(&b, &with(r#"{"seed": 3}"#).replace("\"hi\"", "\"fail\"")),
        "backend_error"
    );
    let r = b.record();
    assert_eq!(r.accepted, 4);
    let seeds: Vec<String> = r
        .generation_options
        .iter()
        .map(|o| crate::jsonfmt::compact(o.get("seed").expect("seed")))
        .collect();
    assert_eq!(seeds, ["1", "2", "3"]);
    assert_eq!(
        crate::jsonfmt::compact(&Value::Object(r.generation_options[0].clone())),
        r#"{"top_k":0,"top_p":0.9,"min_p":0.0,"typical_p":1.0,"repeat_penalty":1.0,"repeat_last_n":0,"presence_penalty":0.0,"frequency_penalty":0.0,"mirostat":0,"temperature":0.7,"seed":1}"#
    );
}

/// Reads reply lines until EOF.
async fn lines_until_eof(stream: &mut UnixStream) -> Vec<String> {
    let mut all = Vec::new();
    let _ = stream.read_to_end(&mut all).await;
    String::from_utf8_lossy(&all)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_socket_frames_requests_by_line() {
    rt().block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let session = Session::open(dir.path(), broker(GenerationPolicy::greedy())).expect("open");
        let path = dir.path().join(SOCKET_NAME);
        assert_eq!(session.path(), path);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).expect("socket").permissions(),
        );
        assert_eq!(mode & 0o777, 0o666);

        // Pipelined requests, blank and whitespace-only lines, one write:
        // one reply per request, in order.
        let mut s = UnixStream::connect(&path).await.expect("connect");
        let batch = format!(
            "{{\"op\": \"info\"}}\n\n  \t\r\n{GEN}\n\x0b\n{{\"op\": \"x\"}}\n{}\n",
            GEN.replace("\"hi\"", "\"two\"")
        );
        s.write_all(batch.as_bytes()).await.expect("write");
        s.shutdown().await.expect("half-close");
        let replies = lines_until_eof(&mut s).await;
        assert_eq!(replies.len(), 4, "{replies:?}");
        assert!(replies[0].starts_with("{\"ok\": true, \"model\": \"tiny\", \"gguf_sha256\""));
        assert!(replies[1].contains("\"content\": \"echo: hi\""));
        assert!(replies[2].contains("unknown op 'x'"));
        assert!(replies[3].contains("\"content\": \"echo: two\""));

        // A request split across writes is one request.
        let mut s = UnixStream::connect(&path).await.expect("connect");
        let (a, b) = GEN.split_at(20);
        s.write_all(a.as_bytes()).await.expect("write");
        s.flush().await.expect("flush");
        tokio::task::yield_now().await;
        s.write_all(format!("{b}\n").as_bytes())
            .await
            .expect("write");
        s.shutdown().await.expect("half-close");
        let replies = lines_until_eof(&mut s).await;
        assert_eq!(replies.len(), 1);
        assert!(replies[0].contains("echo: hi"));

        // A line of exactly 1 MiB with its newline is fine …
        let pad = |total: usize| {
            let base = GEN.replace("\"hi\"", "\"\"");
            let fill = total - 1 - base.len();
            GEN.replace("\"hi\"", &format!("\"{}\"", "a".repeat(fill)))
        };
        let fits = pad(MAX_LINE_BYTES);
        assert_eq!(fits.len() + 1, MAX_LINE_BYTES);
        let mut s = UnixStream::connect(&path).await.expect("connect");
        s.write_all(format!("{fits}\n{{\"op\": \"info\"}}\n").as_bytes())
            .await
            .expect("write");
        s.shutdown().await.expect("half-close");
        let replies = lines_until_eof(&mut s).await;
        assert_eq!(replies.len(), 2);
        assert!(replies[0].starts_with("{\"ok\": true, \"message\""));

        // … one byte more is refused and the connection closed: the
        // request after it is never answered.
        let over = pad(MAX_LINE_BYTES + 1);
        let mut s = UnixStream::connect(&path).await.expect("connect");
        // (The write may fail once the broker hangs up.)
        let _ = s
            .write_all(format!("{{\"op\": \"info\"}}\n{over}\n{{\"op\": \"info\"}}\n").as_bytes())
            .await;
        let _ = s.shutdown().await;
        let replies = lines_until_eof(&mut s).await;
        assert_eq!(replies.len(), 2, "{replies:?}");
        assert!(replies[0].contains("\"backend_handle\""));
        assert_eq!(
            replies[1],
            "{\"ok\": false, \"error\": \"bad_request\", \"detail\": \"request line too large\"}"
        );
        // So is an unterminated line that grows past the limit.
        let mut s = UnixStream::connect(&path).await.expect("connect");
        let _ = s.write_all(&vec![b'x'; MAX_LINE_BYTES + 10]).await;
        let _ = s.shutdown().await;
        let replies = lines_until_eof(&mut s).await;
        assert_eq!(replies.len(), 1);
        assert!(replies[0].contains("request line too large"));

        // Only accepted generates were recorded (the greedy chain, once).
        let record = session.close();
        assert_eq!(record.accepted, 4);
        assert_eq!(record.generation_options.len(), 1);
        assert!(!path.exists(), "the socket is removed when the unit ends");
        assert!(UnixStream::connect(&path).await.is_err());
    });
}

#[test]
fn a_socket_path_over_100_characters_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let long = dir.path().join("d".repeat(100));
    std::fs::create_dir_all(&long).expect("mkdir");
    rt().block_on(async {
        match Session::open(&long, broker(GenerationPolicy::greedy())) {
            Err(OpenError::PathTooLong { chars, .. }) => assert!(chars > MAX_SOCKET_PATH),
            other => panic!("expected PathTooLong, got {other:?}"),
        }
    });
    assert!(!long.join(SOCKET_NAME).exists());
}
