//! SIGHUP (issue 17): `config.toml` is read again. What can change while the node runs is
//! applied at once (the anchor interval and backend, the witness settings, the HTTPS rate
//! limits, the free-space reserve); what cannot (listen addresses, bootstrap peers, the DNS
//! nameserver, the trust policy announced in our record, the mesh id and display name) is
//! named in a WARN line and waits for a restart. A configuration that does not check is
//! refused whole, with an ERROR naming the problem, and the running one stays.

use std::time::Duration;

use crate::config::Config;

use super::{Node, anchor_settings, https};

impl Node {
    /// Reloads `config.toml`; returns the new anchor interval if it changed (the caller's
    /// timer is rebuilt).
    pub(super) fn reload(&mut self) -> Option<Duration> {
        let path = self.dir.root().join("config.toml");
        let new = match Config::load(&path)
            .map_err(|e| e.to_string())
            .and_then(|c| {
                let settings = anchor_settings(&c).map_err(|e| e.to_string())?;
                Ok((c, settings))
            }) {
            Ok(loaded) => loaded,
            Err(error) => {
                tracing::error!(%error, "SIGHUP: config.toml refused; the running configuration stays");
                return None;
            }
        };
        let (new, (backend, witness)) = new;
        let old = self.dir.config().clone();
        let mut running = old.clone();
        let mut applied: Vec<&str> = Vec::new();
        let mut interval = None;
        if new.anchor != old.anchor {
            self.backend = backend;
            self.anchor_interval = Duration::from_secs(new.anchor.interval_secs);
            interval = Some(self.anchor_interval);
            running.anchor = new.anchor.clone();
            applied.push("[anchor]");
        }
        if new.witness != old.witness {
            self.witness.set_config(witness);
            running.witness = new.witness.clone();
            applied.push("[witness]");
        }
        if (new.http.rate_per_sec, new.http.rate_burst)
            != (old.http.rate_per_sec, old.http.rate_burst)
        {
            self.rate_limits = https::RateLimits::new(new.http.rate_per_sec, new.http.rate_burst);
            self.address_limits = https::RateLimits::new(
                new.http.rate_per_sec.saturating_mul(4),
                new.http.rate_burst.saturating_mul(4),
            );
            running.http.rate_per_sec = new.http.rate_per_sec;
            running.http.rate_burst = new.http.rate_burst;
            applied.push("[http] rate_per_sec, rate_burst");
        }
        if new.storage != old.storage {
            running.storage = new.storage.clone();
            applied.push("[storage]");
        }
        let mut restart: Vec<&str> = Vec::new();
        if new.mesh_id != old.mesh_id {
            restart.push("mesh_id");
        }
        if new.display_name != old.display_name {
            restart.push("display_name");
        }
        if new.network != old.network {
            restart.push("[network]");
        }
        if new.dns != old.dns {
            restart.push("[dns]");
        }
        if new.federation != old.federation {
            restart.push("[federation]");
        }
        if (&new.http.listen, &new.http.advertise) != (&old.http.listen, &old.http.advertise) {
            restart.push("[http] listen, advertise");
        }
        self.dir.set_config(running);
        tracing::info!(?applied, "SIGHUP: config.toml reloaded");
        if !restart.is_empty() {
            tracing::warn!(sections = ?restart, "SIGHUP: changed in config.toml, applied only by a restart");
        }
        interval
    }
}
