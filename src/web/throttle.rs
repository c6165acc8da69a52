//! How fast admin passwords may be tried (`governor`, GCRA), and by whom.
//!
//! - A client is its IP address; an IPv6 client is its /64 (what one subscriber is given: a
//!   guesser has all of it), and an IPv4-mapped IPv6 address is the IPv4 address.
//! - Each client may make [`CLIENT_BURST`] checks, then one per [`CLIENT_PERIOD`]; all clients
//!   together [`GLOBAL_BURST`], then one per [`GLOBAL_PERIOD`], which bounds guesses spread over
//!   many addresses.
//! - A client that signed in recently is held to its own bucket only: guesses from elsewhere that
//!   empty the global bucket do not lock the admin out. Recently is: its key verified the right
//!   password in this process within [`SIGNED_IN_FOR`], and no request from it took its bucket's
//!   last cell or was throttled while that check ran, and it has since sent no wrong one (a
//!   password too short to be one does not count), taken its last cell, nor been throttled, or
//!   its browser shows the signed cookie a sign-in leaves (see [`super::auth`]), which survives
//!   restarts and works on every node.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Password checks one client may make in a burst, then one per [`CLIENT_PERIOD`].
pub const CLIENT_BURST: u32 = 10;
const CLIENT_PERIOD: Duration = Duration::from_secs(6);
/// Past this many clients tracked, those with full buckets are forgotten.
const MAX_TRACKED_CLIENTS: usize = 10_000;
/// Password checks all clients together may make in a burst, then one per [`GLOBAL_PERIOD`].
const GLOBAL_BURST: u32 = 60;
const GLOBAL_PERIOD: Duration = Duration::from_millis(200);
/// How long a client that verified the right password counts as signed in (a session's life).
pub const SIGNED_IN_FOR: Duration = Duration::from_secs(super::auth::SESSION_HOURS as u64 * 3600);
/// Clients remembered as signed in; only the right password adds one, so this is a safety bound.
const MAX_SIGNED_IN: usize = 1024;

/// The key a client is throttled under: its IPv4 address, or its IPv6 /64.
pub fn client_key(ip: Option<IpAddr>) -> IpAddr {
    match ip {
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Some(IpAddr::V4(v4)) => IpAddr::V4(v4),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !((1u128 << 64) - 1))),
        },
    }
}

/// The buckets, and the clients that signed in recently.
pub struct Throttle {
    /// Tells how many cells a client has left after each check (see [`Throttle::admit`]).
    per_client: DefaultKeyedRateLimiter<IpAddr, StateInformationMiddleware>,
    global: DefaultDirectRateLimiter,
    /// When each client key last verified the right password.
    signed_in: Mutex<HashMap<IpAddr, Instant>>,
    /// When each client key last took its bucket's last cell or was refused one: a check admitted
    /// before that, still running then, does not sign its key in when it ends (its address has no
    /// cell left, and a sign-in would give its next request a quick yes for the right password).
    emptied: Mutex<HashMap<IpAddr, Instant>>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            per_client: RateLimiter::keyed(quota(CLIENT_PERIOD, CLIENT_BURST))
                .with_middleware::<StateInformationMiddleware>(),
            global: RateLimiter::direct(quota(GLOBAL_PERIOD, GLOBAL_BURST)),
            signed_in: Mutex::new(HashMap::new()),
            emptied: Mutex::new(HashMap::new()),
        }
    }
}

impl Throttle {
    /// Whether `key` verified the right password within [`SIGNED_IN_FOR`].
    pub fn signed_in_recently(&self, key: IpAddr) -> bool {
        let signed_in = self.signed_in.lock().unwrap_or_else(|e| e.into_inner());
        signed_in
            .get(&key)
            .is_some_and(|at| at.elapsed() < SIGNED_IN_FOR)
    }

    /// Remembers that `key` verified the right password in a check admitted at `admitted`, unless
    /// its bucket was emptied since (by this check or another): then `key` is signed out, as its
    /// next request is throttled, right password or wrong.
    pub fn remember_sign_in(&self, key: IpAddr, admitted: Instant) {
        // Held until the sign-in is in: a bucket emptied meanwhile, recorded under this lock,
        // then ends it (see [`Throttle::emptied_now`]). Lock order: `emptied`, then `signed_in`.
        let emptied = self.emptied.lock().unwrap_or_else(|e| e.into_inner());
        let mut signed_in = self.signed_in.lock().unwrap_or_else(|e| e.into_inner());
        if emptied.get(&key).is_some_and(|at| *at >= admitted) {
            signed_in.remove(&key);
            return;
        }
        if signed_in.len() >= MAX_SIGNED_IN {
            signed_in.retain(|_, at| at.elapsed() < SIGNED_IN_FOR);
        }
        if signed_in.len() < MAX_SIGNED_IN {
            signed_in.insert(key, Instant::now());
        }
    }

    /// Forgets that `key` signed in (it sent a wrong password, or was throttled).
    pub fn forget_sign_in(&self, key: IpAddr) {
        let mut signed_in = self.signed_in.lock().unwrap_or_else(|e| e.into_inner());
        signed_in.remove(&key);
    }

    /// Takes a cell for one password check by `key`: from its own bucket, and from the global one
    /// unless `signed_in`. `Err` says how long until a check would be allowed. Taking the last
    /// cell, or being refused one, is recorded (see [`Throttle::remember_sign_in`]), even when the
    /// global bucket then refuses the check.
    pub fn admit(&self, key: IpAddr, signed_in: bool) -> Result<(), Duration> {
        // Forget clients whose buckets are full again, so spoofed or many addresses cannot grow
        // the map without bound.
        if self.per_client.len() > MAX_TRACKED_CLIENTS {
            self.per_client.retain_recent();
        }
        let now = DefaultClock::default().now();
        let cells_left = self
            .per_client
            .check_key(&key)
            .map_err(|not_until| {
                self.emptied_now(key);
                not_until.wait_time_from(now)
            })?
            .remaining_burst_capacity();
        if cells_left == 0 {
            self.emptied_now(key);
        }
        if !signed_in {
            self.global
                .check()
                .map_err(|not_until| not_until.wait_time_from(now))?;
        }
        Ok(())
    }

    /// Records that `key` took its last cell or was refused one now, and ends its sign-in: its
    /// next request is throttled, so the right password must not be answered at once (checks of
    /// its still in argon2 have not ended it yet). Records older than a full bucket's refill are
    /// forgotten once many clients are tracked.
    fn emptied_now(&self, key: IpAddr) {
        let mut emptied = self.emptied.lock().unwrap_or_else(|e| e.into_inner());
        if emptied.len() >= MAX_TRACKED_CLIENTS {
            emptied.retain(|_, at| at.elapsed() < CLIENT_PERIOD * CLIENT_BURST);
        }
        emptied.insert(key, Instant::now());
        // Under the `emptied` lock: a sign-in cannot slip in between the record and this.
        self.forget_sign_in(key);
    }
}

fn quota(period: Duration, burst: u32) -> Quota {
    Quota::with_period(period)
        .expect("a non-zero period")
        .allow_burst(NonZeroU32::new(burst).expect("a non-zero burst"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_their_64_and_mapped_ipv4_is_ipv4() {
        let key = |s: &str| client_key(Some(s.parse().unwrap()));
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2::ffff"));
        assert_eq!(key("2001:db8:1:2::1").to_string(), "2001:db8:1:2::");
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:10.0.0.1"), key("10.0.0.1"));
        assert_ne!(key("10.0.0.1"), key("10.0.0.2"));
    }
}
