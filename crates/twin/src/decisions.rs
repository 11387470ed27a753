//! The bounded in-memory log of IAM decisions the twin made, for `/_rolechain/decisions` and
//! "why was I denied" tooling.

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

/// One logged decision. Serializes as `{id, time, service, action, caller, resource, verdict,
/// reason, decision}`, `verdict` being `allow`, `explicit-deny` or `implicit-deny`.
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
    /// The decision with its trace.
    pub decision: Decision,
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
        s.serialize_field("verdict", verdict_name(self.decision.verdict))?;
        s.serialize_field("reason", &self.decision.reason)?;
        s.serialize_field("decision", &self.decision)?;
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
            decision: Decision,
        }
        let wire = Wire::deserialize(deserializer)?;
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
            decision: wire.decision,
        })
    }
}

/// Which decisions [`DecisionLog::recent`] returns. Parses from `allow`, `deny` (both kinds),
/// `explicit-deny`, `implicit-deny`, `any`.
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
}

impl VerdictFilter {
    /// True when `verdict` passes the filter.
    pub fn matches(self, verdict: Verdict) -> bool {
        match self {
            VerdictFilter::Any => true,
            VerdictFilter::Allow => verdict == Verdict::Allow,
            VerdictFilter::Deny => verdict != Verdict::Allow,
            VerdictFilter::ExplicitDeny => verdict == Verdict::ExplicitDeny,
            VerdictFilter::ImplicitDeny => verdict == Verdict::ImplicitDeny,
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
            _ => Err(
                "verdict must be one of allow, deny, explicit-deny, implicit-deny, any".to_string(),
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
    pub fn record_at(&self, record: DecisionRecord, time: OffsetDateTime) -> u64 {
        let verdict = verdict_name(record.decision.verdict);
        let id = {
            let mut ring = self.lock();
            // The id is taken under the lock so ids grow in buffer order.
            let id = ring.next_id;
            ring.next_id += 1;
            if ring.entries.len() == self.inner.capacity {
                ring.entries.pop_front();
            }
            ring.entries.push_back(Arc::new(DecisionEntry {
                id,
                time,
                service: record.service,
                action: record.action,
                caller: record.caller,
                resource: record.resource,
                decision: record.decision,
            }));
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
            .filter(|e| filter.matches(e.decision.verdict))
            .take(limit)
            .cloned()
            .collect()
    }

    /// The newest denied decision, if any.
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
