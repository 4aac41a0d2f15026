//! `outbox list` and `outbox retry`: the messages the engine keeps until their peer
//! acknowledges them (at-least-once delivery, `engine/retry.rs`), shown and resent on the
//! operator's word. The engine decides what a retry does; this reads and asks.

use serde_json::{Value, json};
use vm_receipts::MeshId;
use vm_storage::OutgoingMessage;
use vm_storage::records::outgoing_key;

use super::control::ControlError;
use super::{Node, bad};
use crate::engine::Command;

/// One waiting message as `outbox list` and `status` show it.
pub(super) fn message_json(m: &OutgoingMessage, now: vm_receipts::Timestamp) -> Value {
    json!({
        "id": outgoing_key(&m.to, &m.topic),
        "to": m.to,
        "topic": m.topic,
        "type": m.message.get("type").and_then(Value::as_str).unwrap_or("?"),
        "attempts": m.attempts,
        "created_at": m.created_at,
        "age_secs": now.seconds_since(m.created_at).max(0),
        "next_attempt_at": m.next_attempt_at,
        "last_error": m.last_error,
    })
}

impl Node {
    /// Every waiting message, oldest first.
    pub(super) fn outbox_list(&self) -> Result<Value, ControlError> {
        let now = self.now();
        let mut waiting = self.all::<OutgoingMessage>()?;
        waiting.sort_by_key(|m| m.created_at);
        Ok(json!(
            waiting
                .iter()
                .map(|m| message_json(m, now))
                .collect::<Vec<_>>()
        ))
    }

    /// Sends now the message `id` (`<mesh>/<topic>`), every message to a mesh (`id` is a
    /// mesh), or every waiting message (`None`).
    pub(super) fn outbox_retry(&mut self, id: Option<&str>) -> Result<Value, ControlError> {
        let (to, topic) = match id {
            None => (None, None),
            Some(id) => {
                let (mesh, topic) = match id.split_once('/') {
                    Some((mesh, topic)) => (mesh, Some(topic.to_owned())),
                    None => (id, None),
                };
                let mesh = MeshId::parse_flexible(mesh).map_err(bad)?;
                (Some(mesh), topic)
            }
        };
        let events = self.command(Command::RetryOutbox {
            to: to.clone(),
            topic: topic.clone(),
        })?;
        let resent = self
            .all::<OutgoingMessage>()?
            .into_iter()
            .filter(|m| to.as_ref().is_none_or(|t| &m.to == t))
            .filter(|m| topic.as_deref().is_none_or(|t| m.topic == t))
            .count();
        // What was sent again (a message past its give-up time is dropped instead, with an
        // `undelivered` event).
        Ok(json!({"resent": resent, "events": events["events"]}))
    }
}
