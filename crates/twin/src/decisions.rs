//! The bounded in-memory log of the twin's authorization outcomes, for `/_rolechain/decisions`
//! and "why was I denied" tooling: every IAM policy decision with its trace, and every refusal
//! made before any policy could decide (a token that does not verify, no OIDC provider, no
//! pod identity association), with the error the caller got.

use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use iam::{Decision, Verdict};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::ser::SerializeStruct as _;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// What a handler records about one decision.
#[derive(Debug, Clone)]
pub struct DecisionRecord {
    /// The service that decided (`sts`, `s3`, …).
    pub service: String,
    /// The IAM action, e.g. `sts:AssumeRole`.
    pub action: String,
    /// The caller's ARN, or a description (`web identity from arn:…`).
    pub caller: String,
    /// The resource ARN.
    pub resource: String,
    /// The decision with its trace.
    pub decision: Decision,
}

/// A request refused before, or instead of, a policy decision: the step of the chain that failed
/// and the error the caller was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Refusal {
    /// The AWS error code, e.g. `InvalidIdentityToken`.
    pub code: String,
    /// The message the caller got.
    pub message: String,
    /// What a user needs to see to fix it, in order (the token's claims against the twin's
    /// clock, the providers the account has, …). Never a secret: no token, no key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<Detail>,
}

/// One fact about a refusal: `name: value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Detail {
    /// What it is, e.g. `token aud`.
    pub name: String,
    /// Its value, as shown to a person.
    pub value: String,
}

impl Detail {
    /// A detail.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Detail {
        Detail {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// What a handler records about a refusal.
#[derive(Debug, Clone)]
pub struct RefusalRecord {
    /// The service that refused (`sts`, `eks-auth`, …).
    pub service: String,
    /// The IAM action asked for, e.g. `sts:AssumeRoleWithWebIdentity`.
    pub action: String,
    /// The caller's ARN, or a description (`token of system:serviceaccount:…`).
    pub caller: String,
    /// The resource ARN.
    pub resource: String,
    /// Why.
    pub refusal: Refusal,
}

/// How a logged request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// IAM policies decided, with the trace.
    Decided(Decision),
    /// Refused before a policy could decide.
    Refused(Refusal),
}

/// One logged outcome. Serializes as `{id, time, service, action, caller, resource, verdict,
/// reason, decision | refusal}`, `verdict` being `allow`, `explicit-deny`, `implicit-deny` or
/// `refused`.
#[derive(Debug, Clone)]
pub struct DecisionEntry {
    /// Monotonic within the process, starting at 1.
    pub id: u64,
    /// When it was recorded.
    pub time: OffsetDateTime,
    /// See [`DecisionRecord::service`].
    pub service: String,
    /// See [`DecisionRecord::action`].
    pub action: String,
    /// See [`DecisionRecord::caller`].
    pub caller: String,
    /// See [`DecisionRecord::resource`].
    pub resource: String,
    /// The decision with its trace, or the refusal.
    pub outcome: Outcome,
}

impl DecisionEntry {
    /// The policy decision, unless the request was refused before one.
    pub fn decision(&self) -> Option<&Decision> {
        match &self.outcome {
            Outcome::Decided(d) => Some(d),
            Outcome::Refused(_) => None,
        }
    }

    /// The refusal, when there was no policy decision.
    pub fn refusal(&self) -> Option<&Refusal> {
        match &self.outcome {
            Outcome::Decided(_) => None,
            Outcome::Refused(r) => Some(r),
        }
    }

    /// True unless a policy decision allowed it.
    pub fn is_denied(&self) -> bool {
        self.decision().is_none_or(|d| !d.is_allowed())
    }

    fn verdict_name(&self) -> &'static str {
        match &self.outcome {
            Outcome::Decided(d) => verdict_name(d.verdict),
            Outcome::Refused(_) => "refused",
        }
    }
}

fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Allow => "allow",
        Verdict::ExplicitDeny => "explicit-deny",
        Verdict::ImplicitDeny => "implicit-deny",
    }
}

impl Serialize for DecisionEntry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let time = self
            .time
            .format(&Rfc3339)
            .map_err(serde::ser::Error::custom)?;
        let mut s = serializer.serialize_struct("DecisionEntry", 9)?;
        s.serialize_field("id", &self.id)?;
        s.serialize_field("time", &time)?;
        s.serialize_field("service", &self.service)?;
        s.serialize_field("action", &self.action)?;
        s.serialize_field("caller", &self.caller)?;
        s.serialize_field("resource", &self.resource)?;
        s.serialize_field("verdict", self.verdict_name())?;
        match &self.outcome {
            Outcome::Decided(decision) => {
                s.serialize_field("reason", &decision.reason)?;
                s.serialize_field("decision", decision)?;
            }
            Outcome::Refused(refusal) => {
                s.serialize_field(
                    "reason",
                    &serde_json::json!({"rule": "refused", "code": refusal.code}),
                )?;
                s.serialize_field("refusal", refusal)?;
            }
        }
        s.end()
    }
}

/// Reads back what [`Serialize`] writes (`verdict` is derived from the decision, so ignored),
/// for clients of `/_rolechain/decisions` such as `rolechain explain --last-denied`.
impl<'de> serde::Deserialize<'de> for DecisionEntry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        struct Wire {
            id: u64,
            time: String,
            service: String,
            action: String,
            caller: String,
            resource: String,
            #[serde(default)]
            decision: Option<Decision>,
            #[serde(default)]
            refusal: Option<Refusal>,
        }
        let wire = Wire::deserialize(deserializer)?;
        let outcome = match (wire.decision, wire.refusal) {
            (Some(d), None) => Outcome::Decided(d),
            (None, Some(r)) => Outcome::Refused(r),
            _ => {
                return Err(serde::de::Error::custom(
                    "an entry has exactly one of decision and refusal",
                ))
            }
        };
        let time = OffsetDateTime::parse(&wire.time, &Rfc3339).map_err(|e| {
            serde::de::Error::custom(format!("time {:?} is not RFC 3339: {e}", wire.time))
        })?;
        Ok(DecisionEntry {
            id: wire.id,
            time,
            service: wire.service,
            action: wire.action,
            caller: wire.caller,
            resource: wire.resource,
            outcome,
        })
    }
}

/// Which decisions [`DecisionLog::recent`] returns. Parses from `allow`, `deny` (both kinds and
/// refusals), `explicit-deny`, `implicit-deny`, `refused`, `any`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VerdictFilter {
    /// Every decision.
    #[default]
    Any,
    /// Allowed ones.
    Allow,
    /// Denied ones, explicitly or implicitly.
    Deny,
    /// Denied by a `Deny` statement.
    ExplicitDeny,
    /// Denied because nothing allowed.
    ImplicitDeny,
    /// Refused before a policy decided (bad token, no provider, no association).
    Refused,
}

impl VerdictFilter {
    /// True when `outcome` passes the filter; `Deny` takes refusals too.
    pub fn matches(self, outcome: &Outcome) -> bool {
        let verdict = match outcome {
            Outcome::Decided(d) => d.verdict,
            Outcome::Refused(_) => {
                return matches!(
                    self,
                    VerdictFilter::Any | VerdictFilter::Deny | VerdictFilter::Refused
                )
            }
        };
        match self {
            VerdictFilter::Any => true,
            VerdictFilter::Allow => verdict == Verdict::Allow,
            VerdictFilter::Deny => verdict != Verdict::Allow,
            VerdictFilter::ExplicitDeny => verdict == Verdict::ExplicitDeny,
            VerdictFilter::ImplicitDeny => verdict == Verdict::ImplicitDeny,
            VerdictFilter::Refused => false,
        }
    }
}

impl FromStr for VerdictFilter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "any" | "all" => Ok(VerdictFilter::Any),
            "allow" => Ok(VerdictFilter::Allow),
            "deny" => Ok(VerdictFilter::Deny),
            "explicit-deny" => Ok(VerdictFilter::ExplicitDeny),
            "implicit-deny" => Ok(VerdictFilter::ImplicitDeny),
            "refused" => Ok(VerdictFilter::Refused),
            _ => Err(
                "verdict must be one of allow, deny, explicit-deny, implicit-deny, refused, any"
                    .to_string(),
            ),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct VerdictLabels {
    pub(crate) verdict: &'static str,
}

struct Ring {
    next_id: u64,
    entries: VecDeque<Arc<DecisionEntry>>,
}

struct Inner {
    capacity: usize,
    ring: Mutex<Ring>,
    counters: Family<VerdictLabels, Counter>,
}

/// A bounded, thread-safe log of the newest decisions. Cloning shares the log.
///
/// The lock is held only to push one pointer (writers) or to copy up to `limit` pointers
/// (readers); serialization happens outside it, so a slow `/decisions` client never holds up
/// a request that is recording a decision.
#[derive(Clone)]
pub struct DecisionLog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DecisionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionLog")
            .field("capacity", &self.inner.capacity)
            .field("len", &self.len())
            .finish()
    }
}

impl DecisionLog {
    /// A log keeping the newest `capacity` decisions (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        DecisionLog {
            inner: Arc::new(Inner {
                capacity,
                ring: Mutex::new(Ring {
                    next_id: 1,
                    entries: VecDeque::with_capacity(capacity),
                }),
                counters: Family::default(),
            }),
        }
    }

    /// How many entries it keeps.
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// How many entries it holds now.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// True when nothing has been recorded (or everything was dropped, which cannot happen).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records a decision now, evicting the oldest entry when full, and counts it in
    /// `rolechain_twin_decisions_total`. Returns the entry's id.
    pub fn record(&self, record: DecisionRecord) -> u64 {
        self.record_at(record, OffsetDateTime::now_utc())
    }

    /// As [`record`](Self::record), with an explicit time.
    pub fn record_at(&self, mut record: DecisionRecord, time: OffsetDateTime) -> u64 {
        // Whoever can read the log (anyone on loopback) must not learn another account's
        // external id from a denial.
        record.decision.redact_secrets();
        self.push(
            time,
            record.service,
            record.action,
            record.caller,
            record.resource,
            Outcome::Decided(record.decision),
        )
    }

    /// Records a refusal now, like [`record`](Self::record). Returns the entry's id.
    pub fn refuse(&self, record: RefusalRecord) -> u64 {
        self.push(
            OffsetDateTime::now_utc(),
            record.service,
            record.action,
            record.caller,
            record.resource,
            Outcome::Refused(record.refusal),
        )
    }

    fn push(
        &self,
        time: OffsetDateTime,
        service: String,
        action: String,
        caller: String,
        resource: String,
        outcome: Outcome,
    ) -> u64 {
        let entry = DecisionEntry {
            id: 0,
            time,
            service,
            action,
            caller,
            resource,
            outcome,
        };
        let verdict = entry.verdict_name();
        let id = {
            let mut ring = self.lock();
            // The id is taken under the lock so ids grow in buffer order.
            let id = ring.next_id;
            ring.next_id += 1;
            if ring.entries.len() == self.inner.capacity {
                ring.entries.pop_front();
            }
            ring.entries
                .push_back(Arc::new(DecisionEntry { id, ..entry }));
            id
        };
        self.inner
            .counters
            .get_or_create(&VerdictLabels { verdict })
            .inc();
        id
    }

    /// Up to `limit` entries passing `filter`, newest first.
    pub fn recent(&self, limit: usize, filter: VerdictFilter) -> Vec<Arc<DecisionEntry>> {
        let ring = self.lock();
        ring.entries
            .iter()
            .rev()
            .filter(|e| filter.matches(&e.outcome))
            .take(limit)
            .cloned()
            .collect()
    }

    /// The newest denial or refusal, if any.
    pub fn last_denied(&self) -> Option<Arc<DecisionEntry>> {
        self.recent(1, VerdictFilter::Deny).into_iter().next()
    }

    pub(crate) fn counters(&self) -> Family<VerdictLabels, Counter> {
        self.inner.counters.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        // A panic while holding the lock leaves the ring consistent (every mutation is a single
        // push or pop), so a poisoned lock is still usable.
        self.inner
            .ring
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
