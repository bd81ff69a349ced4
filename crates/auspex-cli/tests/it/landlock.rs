//! `auspex __landlock-exec`: the binary as the Landlock shim the worker
//! runs inside its sandbox (hidden; `auspex_worker::landlock`).

use crate::common::*;

#[test]
fn the_shim_restricts_then_runs_the_program_and_fails_closed() {
    let ctx = Ctx::new();
    // Usage errors: exit 97 (the sandbox's "unavailable"), a message, and
    // the program never runs.
    let marker = ctx.path("ran");
    let r = ctx.run(&[
        &"__landlock-exec",
        &"--bogus",
        &"--",
        &"/bin/sh",
        &"-c",
        &format!("touch {}", marker.display()),
    ]);
    assert_eq!(r.code, 97, "{}", r.stderr);
    assert!(r.stderr.contains("unexpected argument"), "{}", r.stderr);
    assert!(!marker.exists());
    let r = ctx.run(&[&"__landlock-exec", &"--write", &"/tmp"]);
    assert_eq!(r.code, 97);
    assert!(r.stderr.contains("missing `-- PROGRAM`"), "{}", r.stderr);

    let probe = ctx.run(&[&"__landlock-exec", &"--probe"]);
    if probe.code != 0 {
        // A kernel without Landlock: the probe says so and fails closed.
        assert_eq!(probe.code, 97, "{}", probe.stderr);
        assert!(probe.stderr.contains("Landlock"), "{}", probe.stderr);
        return;
    }
    assert!(
        matches!(probe.stdout.trim(), "landlock: full" | "landlock: partial"),
        "{}",
        probe.stdout
    );
    // Enforced: writes inside --write succeed, elsewhere fail; reads
    // outside --read fail; the program's exit status is the shim's.
    let rw = ctx.path("rw");
    let ro = ctx.path("ro");
    std::fs::create_dir_all(&rw).expect("mkdir");
    std::fs::create_dir_all(&ro).expect("mkdir");
    std::fs::write(ro.join("secret"), "s").expect("write");
    let script = format!(
        "echo a > {rw}/a || exit 10; \
         if echo b > {ro}/b 2>/dev/null; then exit 11; fi; \
         if cat {ro}/secret >/dev/null 2>&1; then exit 12; fi; \
         exit 7",
        rw = rw.display(),
        ro = ro.display()
    );
    let mut args: Vec<String> = vec!["__landlock-exec".into()];
    for d in ["/usr", "/bin", "/lib", "/lib64", "/etc"] {
        args.extend(["--read".into(), d.into()]);
    }
    args.extend(["--write".into(), rw.display().to_string()]);
    args.extend(["--".into(), "/bin/sh".into(), "-c".into(), script]);
    let out = ctx.auspex().args(&args).output().expect("auspex runs");
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(rw.join("a").exists());
    assert!(!ro.join("b").exists());
}
