//! At-least-once delivery: every message waits in the store's outgoing table until its peer
//! acknowledges it, and ticks send due ones again with jittered exponential backoff.

use rand::RngExt;
use vm_receipts::{Blake3Hash, MeshId, Timestamp};
use vm_storage::records::outgoing_key;
use vm_storage::{OutgoingMessage, ReadTx, Record, StoreError};

use super::{Ctx, EngineError, Event, Output, PeerMessage};

/// When to send an unacknowledged message again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// First wait, in seconds.
    pub initial_secs: i64,
    /// Longest wait, in seconds.
    pub max_secs: i64,
    /// Give up after this long since the message was first queued.
    pub give_up_after_secs: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_secs: 5,
            max_secs: 3600,
            give_up_after_secs: 30 * 86_400,
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempts + 1`: doubling from `initial_secs`, capped, with
    /// ±25 % jitter so peers that failed together do not retry together.
    fn delay(&self, attempts: u32, rng: &mut impl rand::Rng) -> i64 {
        let base = self
            .initial_secs
            .max(1)
            .saturating_mul(1i64 << attempts.min(30))
            .min(self.max_secs.max(1));
        let spread = base / 4;
        base + rng.random_range(-spread..=spread)
    }
}

/// Sends `message` to `to` now and keeps it (replacing any older message on `topic`) until
/// acknowledged.
pub fn send(
    ctx: &mut Ctx<'_, '_>,
    to: &MeshId,
    topic: &str,
    message: PeerMessage,
) -> Result<(), EngineError> {
    let message_hash = message.hash()?;
    let delay = ctx.config.retry.delay(0, ctx.rng);
    ctx.tx.put(&OutgoingMessage {
        to: to.clone(),
        topic: topic.to_owned(),
        message: message.to_value()?,
        message_hash,
        attempts: 1,
        next_attempt_at: ctx.now.plus_seconds(delay),
        created_at: ctx.now,
        last_error: None,
    })?;
    ctx.out.push(Output::Send {
        to: to.clone(),
        message,
        message_hash,
    });
    Ok(())
}

/// Stops sending anything on `topic` to `to` (the exchange it belonged to is over).
pub fn forget(ctx: &mut Ctx<'_, '_>, to: &MeshId, topic: &str) -> Result<(), EngineError> {
    ctx.tx.remove::<OutgoingMessage>(&outgoing_key(to, topic))?;
    Ok(())
}

fn find(
    ctx: &Ctx<'_, '_>,
    to: &MeshId,
    hash: &Blake3Hash,
) -> Result<Option<OutgoingMessage>, EngineError> {
    Ok(ctx
        .tx
        .all::<OutgoingMessage>()?
        .into_iter()
        .find(|m| &m.to == to && &m.message_hash == hash))
}

/// The peer acknowledged the message: stop sending it. An acknowledgement of a message we no
/// longer hold (replaced, or acknowledged twice) changes nothing.
pub fn delivered(ctx: &mut Ctx<'_, '_>, to: &MeshId, hash: &Blake3Hash) -> Result<(), EngineError> {
    if let Some(m) = find(ctx, to, hash)? {
        ctx.tx
            .remove::<OutgoingMessage>(&outgoing_key(to, &m.topic))?;
    }
    Ok(())
}

/// Failed attempts after which a message still waiting is worth the operator's attention
/// (the first one or two failures are a peer restarting; three are a peer in trouble).
const DELAYED_AFTER: u32 = 3;

/// Sending failed. For good: stop and tell the operator. Otherwise the schedule stands; at
/// the [`DELAYED_AFTER`]th failure the operator is told once that it is still being resent.
pub fn failed(
    ctx: &mut Ctx<'_, '_>,
    to: &MeshId,
    hash: &Blake3Hash,
    reason: &str,
    permanent: bool,
) -> Result<(), EngineError> {
    let Some(mut m) = find(ctx, to, hash)? else {
        return Ok(());
    };
    if !permanent {
        // Kept for `outbox list` and `status`: why the message is still waiting.
        m.last_error = Some(reason.to_owned());
        ctx.tx.put(&m)?;
    }
    if !permanent && m.attempts == DELAYED_AFTER {
        ctx.event(Event::Delayed {
            to: to.clone(),
            topic: m.topic.clone(),
            attempts: m.attempts,
            reason: reason.to_owned(),
        });
    }
    if permanent {
        ctx.tx
            .remove::<OutgoingMessage>(&outgoing_key(to, &m.topic))?;
        super::agreements::on_draft_refused(ctx, to, &m, reason)?;
        ctx.event(Event::Undelivered {
            to: to.clone(),
            topic: m.topic,
            reason: reason.to_owned(),
        });
    }
    Ok(())
}

/// Sends again what is due; gives up on what waited too long.
pub fn tick(ctx: &mut Ctx<'_, '_>) -> Result<(), EngineError> {
    let due: Vec<OutgoingMessage> = ctx
        .tx
        .all::<OutgoingMessage>()?
        .into_iter()
        .filter(|m| m.next_attempt_at <= ctx.now)
        .collect();
    for mut m in due {
        // A countersigned agreement or a revocation notice is the peer's only way to learn
        // that an agreement began or ends: those are never given up, or the two sides would
        // disagree for good.
        let vital = matches!(
            m.message.get("type").and_then(|t| t.as_str()),
            Some("agreement" | "revocation")
        );
        if !vital && ctx.now.seconds_since(m.created_at) > ctx.config.retry.give_up_after_secs {
            ctx.tx.remove::<OutgoingMessage>(&m.key())?;
            ctx.event(Event::Undelivered {
                to: m.to.clone(),
                topic: m.topic.clone(),
                reason: format!("no acknowledgement after {} attempts", m.attempts),
            });
            continue;
        }
        let message = PeerMessage::from_value(m.message.clone())?;
        let delay = ctx.config.retry.delay(m.attempts, ctx.rng);
        m.attempts = m.attempts.saturating_add(1);
        m.next_attempt_at = ctx.now.plus_seconds(delay);
        ctx.tx.put(&m)?;
        ctx.out.push(Output::Send {
            to: m.to.clone(),
            message,
            message_hash: m.message_hash,
        });
    }
    Ok(())
}

/// The operator's `outbox retry`: the waiting messages to `to` (every one, or the one on
/// `topic`) are due now and sent at once; their backoff goes on from where it was. Returns
/// how many were sent. Nothing waiting is 0 for "all", an error naming what was asked for
/// otherwise.
pub fn retry_now(
    ctx: &mut Ctx<'_, '_>,
    to: Option<&MeshId>,
    topic: Option<&str>,
) -> Result<usize, EngineError> {
    let chosen: Vec<OutgoingMessage> = ctx
        .tx
        .all::<OutgoingMessage>()?
        .into_iter()
        .filter(|m| to.is_none_or(|t| &m.to == t) && topic.is_none_or(|t| m.topic == t))
        .collect();
    if chosen.is_empty() && (to.is_some() || topic.is_some()) {
        let what = match (to, topic) {
            (Some(to), Some(topic)) => format!("no message to {to} on {topic} is waiting"),
            (Some(to), None) => format!("no message to {to} is waiting"),
            _ => "no message is waiting".to_owned(),
        };
        return Err(EngineError::Command(what));
    }
    let count = chosen.len();
    for mut m in chosen {
        m.next_attempt_at = ctx.now;
        ctx.tx.put(&m)?;
    }
    tick(ctx)?;
    Ok(count)
}

/// When each waiting message is due.
pub fn deadlines(tx: &ReadTx) -> Result<Vec<Timestamp>, StoreError> {
    Ok(tx
        .all::<OutgoingMessage>()?
        .into_iter()
        .map(|m| m.next_attempt_at)
        .collect())
}
