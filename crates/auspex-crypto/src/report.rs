//! The one report type every verifier returns: a list of **named checks**, each
//! passed, failed (with the reason) or not checked (with the reason), so that
//! nothing a verifier skipped can hide behind a bare `bool`.
//!
//! The CLI's tables, `--json` output and the evidence verifier all render this
//! type; check names are stable strings (`tlog.inclusion_proof`,
//! `cose.signature`) and are part of the tool's interface.
//!
//! ```
//! use auspex_crypto::report::{CheckId, Report};
//! const BODY: CheckId = CheckId("example.body_hash");
//! const PROOF: CheckId = CheckId("example.inclusion_proof");
//! let mut r = Report::new();
//! r.fail(BODY, "body does not commit to the artifact");
//! if let Some(why) = r.unmet(&[BODY]) {
//!     r.not_checked(PROOF, why);
//! }
//! assert!(!r.verdict(&[BODY, PROOF]).is_verified());
//! assert_eq!(r.first_failure().map(|c| c.id), Some(BODY));
//! ```

use std::fmt;

use auspex_wire::json::{Object, Value};

/// The stable name of one check, e.g. `tlog.inclusion_proof`. Each verifier
/// module declares its checks as constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckId(pub &'static str);

impl CheckId {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// What became of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The check ran and the evidence satisfied it.
    Passed,
    /// The check ran and the evidence did not satisfy it; the reason says why.
    Failed(String),
    /// The check did not run: not requested, input absent, or a check it
    /// depends on did not pass. The reason says which.
    NotChecked(String),
}

impl Outcome {
    /// `passed`, `failed` or `not_checked`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed(_) => "failed",
            Outcome::NotChecked(_) => "not_checked",
        }
    }

    /// The reason, for failed and unchecked outcomes.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Passed => None,
            Outcome::Failed(r) | Outcome::NotChecked(r) => Some(r),
        }
    }
}

/// One named check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Which check.
    pub id: CheckId,
    /// What became of it.
    pub outcome: Outcome,
}

/// The verdict over a report given the checks a caller requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No check failed and every required check passed.
    Verified,
    /// At least one check failed (listed in report order).
    Failed(Vec<CheckId>),
    /// Nothing failed, but these required checks did not run (or are absent).
    Incomplete(Vec<CheckId>),
}

impl Verdict {
    /// True only for [`Verdict::Verified`].
    pub fn is_verified(&self) -> bool {
        matches!(self, Verdict::Verified)
    }
}

/// The named checks of one verification, in the order they were made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Report {
    checks: Vec<Check>,
}

impl Report {
    /// An empty report.
    pub fn new() -> Report {
        Report::default()
    }

    fn set(&mut self, id: CheckId, outcome: Outcome) {
        // A check recorded twice keeps its worst outcome (failed > not checked > passed).
        let rank = |o: &Outcome| match o {
            Outcome::Passed => 0,
            Outcome::NotChecked(_) => 1,
            Outcome::Failed(_) => 2,
        };
        match self.checks.iter_mut().find(|c| c.id == id) {
            Some(c) if rank(&outcome) > rank(&c.outcome) => c.outcome = outcome,
            Some(_) => {}
            None => self.checks.push(Check { id, outcome }),
        }
    }

    /// Records a passed check.
    pub fn pass(&mut self, id: CheckId) {
        self.set(id, Outcome::Passed);
    }

    /// Records a failed check.
    pub fn fail(&mut self, id: CheckId, reason: impl Into<String>) {
        self.set(id, Outcome::Failed(reason.into()));
    }

    /// Records a check that did not run.
    pub fn not_checked(&mut self, id: CheckId, reason: impl Into<String>) {
        self.set(id, Outcome::NotChecked(reason.into()));
    }

    /// Records `Ok` as passed and `Err(e)` as failed with `e`'s message.
    /// Returns whether it passed.
    pub fn record<E: fmt::Display>(&mut self, id: CheckId, result: Result<(), E>) -> bool {
        match result {
            Ok(()) => {
                self.pass(id);
                true
            }
            Err(e) => {
                self.fail(id, e.to_string());
                false
            }
        }
    }

    /// `None` if every check in `deps` passed; otherwise the reason to give a
    /// dependent check that therefore cannot run (`needs tlog.body_hash`).
    pub fn unmet(&self, deps: &[CheckId]) -> Option<String> {
        let missing: Vec<&str> = deps
            .iter()
            .filter(|d| !self.passed(**d))
            .map(|d| d.as_str())
            .collect();
        if missing.is_empty() {
            None
        } else {
            Some(format!("needs {}", missing.join(", ")))
        }
    }

    /// The checks, in order.
    pub fn checks(&self) -> &[Check] {
        &self.checks
    }

    /// The outcome of `id`, if recorded.
    pub fn outcome(&self, id: CheckId) -> Option<&Outcome> {
        self.checks.iter().find(|c| c.id == id).map(|c| &c.outcome)
    }

    /// True if `id` was recorded as passed.
    pub fn passed(&self, id: CheckId) -> bool {
        matches!(self.outcome(id), Some(Outcome::Passed))
    }

    /// The first failed check, if any.
    pub fn first_failure(&self) -> Option<&Check> {
        self.checks
            .iter()
            .find(|c| matches!(c.outcome, Outcome::Failed(_)))
    }

    /// The verdict: verified only if no check failed and every `required`
    /// check passed (a required check that is absent or unchecked makes the
    /// verdict incomplete, never verified).
    pub fn verdict(&self, required: &[CheckId]) -> Verdict {
        let failed: Vec<CheckId> = self
            .checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Failed(_)))
            .map(|c| c.id)
            .collect();
        if !failed.is_empty() {
            return Verdict::Failed(failed);
        }
        let missing: Vec<CheckId> = required
            .iter()
            .copied()
            .filter(|id| !self.passed(*id))
            .collect();
        if missing.is_empty() {
            Verdict::Verified
        } else {
            Verdict::Incomplete(missing)
        }
    }

    /// Appends another report's checks, prefixing nothing (check names are
    /// already namespaced).
    pub fn extend(&mut self, other: Report) {
        for c in other.checks {
            self.set(c.id, c.outcome);
        }
    }

    /// The report as JSON: `[{"check": …, "outcome": …, "reason": …}, …]`.
    pub fn to_value(&self) -> Value {
        Value::Array(
            self.checks
                .iter()
                .map(|c| {
                    let mut o = Object::new();
                    o.insert("check".into(), Value::from(c.id.as_str()));
                    o.insert("outcome".into(), Value::from(c.outcome.label()));
                    if let Some(r) = c.outcome.reason() {
                        o.insert("reason".into(), Value::from(r));
                    }
                    Value::Object(o)
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: CheckId = CheckId("t.a");
    const B: CheckId = CheckId("t.b");

    #[test]
    fn required_but_unchecked_is_not_verified() {
        let mut r = Report::new();
        r.pass(A);
        assert_eq!(r.verdict(&[A, B]), Verdict::Incomplete(vec![B]));
        r.not_checked(B, "not requested");
        assert_eq!(r.verdict(&[A, B]), Verdict::Incomplete(vec![B]));
        assert!(r.verdict(&[A]).is_verified());
    }

    #[test]
    fn a_failure_is_never_overwritten_by_a_pass() {
        let mut r = Report::new();
        r.fail(A, "bad");
        r.pass(A);
        assert_eq!(r.verdict(&[]), Verdict::Failed(vec![A]));
        assert_eq!(r.unmet(&[A, B]).as_deref(), Some("needs t.a, t.b"));
    }
}
