//! `vm-storage` will own the node's durable state in redb: the peer book (discovery records,
//! manual entries and where each came from), proposals with their negotiation history,
//! agreements, witness state per (peer, scroll), discrepancies and the replay cache, with a
//! schema version and migrations. It stores; it never decides protocol outcomes.
