//! A limit on connections still in startup (connected, not yet authenticated),
//! overall and per client address, so that silent or slow TCP connections cannot
//! fill `server.max_connections` and lock authenticated work out for a whole
//! `startup_timeout`. A permit is taken when a connection is accepted and given
//! back when its startup ends (authenticated, refused, timed out or closed).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Why a connection was not let into startup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `server.max_starting` connections are starting up.
    Overall,
    /// `server.max_starting_per_client` connections from this address are.
    PerClient,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_addr: HashMap<IpAddr, usize>,
}

/// The shared counters.
#[derive(Debug, Clone)]
pub struct StartupGate {
    overall: usize,
    per_client: usize,
    counts: Arc<Mutex<Counts>>,
}

/// Held by one connection while it starts up; dropping it frees the slot.
#[derive(Debug)]
pub struct Permit {
    addr: IpAddr,
    counts: Arc<Mutex<Counts>>,
}

impl StartupGate {
    pub fn new(overall: usize, per_client: usize) -> StartupGate {
        StartupGate {
            overall,
            per_client,
            counts: Arc::default(),
        }
    }

    /// A permit for a connection from `addr`, or why there is none.
    pub fn enter(&self, addr: IpAddr) -> Result<Permit, Refused> {
        // A poisoned lock only means another thread panicked while counting; the
        // counts themselves are still consistent (each update is one statement).
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if c.total >= self.overall {
            return Err(Refused::Overall);
        }
        let n = c.by_addr.entry(addr).or_insert(0);
        if *n >= self.per_client {
            return Err(Refused::PerClient);
        }
        *n += 1;
        c.total += 1;
        Ok(Permit {
            addr,
            counts: Arc::clone(&self.counts),
        })
    }

    /// Connections starting up now (overall).
    pub fn starting(&self) -> usize {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.by_addr.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                c.by_addr.remove(&self.addr);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn limits_per_address_and_overall_and_frees_on_drop() {
        let g = StartupGate::new(3, 2);
        let a1 = g.enter(ip("10.0.0.1")).unwrap();
        let a2 = g.enter(ip("10.0.0.1")).unwrap();
        assert_eq!(g.enter(ip("10.0.0.1")).unwrap_err(), Refused::PerClient);
        let b1 = g.enter(ip("10.0.0.2")).unwrap();
        assert_eq!(g.enter(ip("10.0.0.3")).unwrap_err(), Refused::Overall);
        assert_eq!(g.starting(), 3);
        drop(a1);
        let a3 = g.enter(ip("10.0.0.1")).unwrap();
        drop((a2, a3, b1));
        assert_eq!(g.starting(), 0);
        assert!(g.counts.lock().unwrap().by_addr.is_empty());
        let _c = g.enter(ip("::1")).unwrap();
    }
}
