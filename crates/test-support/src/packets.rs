//! Real packet delay, for measuring at a distance with the kernel's own TCP.
//!
//! Toxiproxy delays the *bytes* of a connection: it ends TCP on both sides locally, so the
//! kernels at either end never see the round trip, and TCP's congestion window (slow start, and
//! its restart after an idle second) costs nothing. [`PacketDelay`] delays the *packets* instead:
//! every TCP packet to or from the given ports of the cluster's addresses is held in the kernel's
//! netfilter queue (NFQUEUE) for `one_way` before it goes on, both ways, so both ends' TCP run
//! against the full round trip. The maximum segment size of those connections is clamped to 1448
//! bytes, as on an internet path with a 1500-byte MTU (loopback's MTU is 64 KiB, which would let a
//! whole transaction fit in one segment).
//!
//! Needs root, and `iptables-legacy` (`apt-get install iptables`): the nftables of some kernels
//! lack the `queue` expression, while the legacy `NFQUEUE` target is common. The rules use
//! `--queue-bypass`, so if this process dies without removing them, packets pass undelayed
//! instead of being dropped. Precision: a packet waits `one_way` from when this process receives
//! it, plus up to [`POLL`] (the queue is read without blocking: the `nfq` crate does not expose
//! its socket to wait on).

use std::collections::VecDeque;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nfq::{Queue, Verdict};

/// How often the queue is read while nothing is due.
pub const POLL: Duration = Duration::from_micros(100);

/// Packets to and from `ports` on `net` held for a one-way delay while this lives.
pub struct PacketDelay {
    rules: Vec<Vec<String>>,
    one_way_us: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PacketDelay {
    /// Starts holding TCP packets to or from `ports` on `net` (e.g. `127.1.2.0/24`) for
    /// `one_way`, in netfilter queue `queue`.
    pub fn start(queue: u16, net: &str, ports: &[u16], one_way: Duration) -> Result<Self, String> {
        let one_way_us = Arc::new(AtomicU64::new(one_way.as_micros() as u64));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let (one_way_us, stop) = (one_way_us.clone(), stop.clone());
            std::thread::spawn(move || hold(queue, &one_way_us, &stop, ready_tx))
        };
        ready_rx
            .recv()
            .map_err(|_| "the packet-delay thread stopped".to_owned())??;
        let ports = ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let queued = format!("-j NFQUEUE --queue-num {queue} --queue-bypass");
        let clamp = "-j TCPMSS --set-mss 1448";
        let syn = "-p tcp --tcp-flags SYN,RST SYN";
        let rules: Vec<Vec<String>> = [
            format!("-t mangle -A OUTPUT {syn} -d {net} -m multiport --dports {ports} {clamp}"),
            format!("-t mangle -A OUTPUT {syn} -s {net} -m multiport --sports {ports} {clamp}"),
            // On INPUT, after loopback has released the sender's socket from the packet: held on
            // OUTPUT, it would count against the sender's small-queue limit and slow TCP down in
            // a way no network does.
            format!("-A INPUT -p tcp -d {net} -m multiport --dports {ports} {queued}"),
            format!("-A INPUT -p tcp -s {net} -m multiport --sports {ports} {queued}"),
        ]
        .iter()
        .map(|rule| rule.split(' ').map(str::to_owned).collect())
        .collect();
        let mut delay = PacketDelay {
            rules: Vec::new(),
            one_way_us,
            stop,
            thread: Some(thread),
        };
        for rule in rules {
            iptables(&rule)?;
            delay.rules.push(rule);
        }
        Ok(delay)
    }

    /// Changes the one-way delay of packets from now on.
    pub fn set(&self, one_way: Duration) {
        self.one_way_us
            .store(one_way.as_micros() as u64, Ordering::Relaxed);
    }
}

impl Drop for PacketDelay {
    fn drop(&mut self) {
        for rule in self.rules.drain(..).rev() {
            let delete: Vec<String> = rule
                .into_iter()
                .map(|arg| if arg == "-A" { "-D".to_owned() } else { arg })
                .collect();
            if let Err(err) = iptables(&delete) {
                eprintln!("packet delay: {err}");
            }
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn iptables(args: &[String]) -> Result<(), String> {
    let output = Command::new("iptables-legacy")
        .args(args)
        .output()
        .map_err(|e| format!("iptables-legacy (apt-get install iptables; needs root): {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "iptables-legacy {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// The queue's reader: every packet is let go `one_way_us` after it arrived, in arrival order.
fn hold(
    queue_num: u16,
    one_way_us: &AtomicU64,
    stop: &AtomicBool,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) {
    let opened = (|| {
        let mut queue = Queue::open()?;
        queue.bind(queue_num)?;
        // Only the packet's id and metadata cross to this process, not its bytes.
        queue.set_copy_range(queue_num, 0)?;
        queue.set_queue_max_len(queue_num, 1 << 16)?;
        queue.set_recv_gso(queue_num, true)?;
        queue.set_nonblocking(true);
        std::io::Result::Ok(queue)
    })();
    let mut queue = match opened {
        Ok(queue) => {
            let _ = ready.send(Ok(()));
            queue
        }
        Err(err) => {
            let _ = ready.send(Err(format!(
                "netfilter queue {queue_num} (needs root): {err}"
            )));
            return;
        }
    };
    let mut held = VecDeque::new();
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        loop {
            match queue.recv() {
                Ok(mut packet) => {
                    packet.set_verdict(Verdict::Accept);
                    let one_way = Duration::from_micros(one_way_us.load(Ordering::Relaxed));
                    held.push_back((Instant::now() + one_way, packet));
                }
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(err) => {
                    eprintln!("packet delay: reading queue {queue_num}: {err}");
                    break;
                }
            }
        }
        let now = Instant::now();
        while let Some((due, _)) = held.front() {
            if *due > now && !stopping {
                break;
            }
            let (_, packet) = held.pop_front().expect("a held packet");
            if let Err(err) = queue.verdict(packet) {
                eprintln!("packet delay: letting a packet go: {err}");
            }
        }
        if stopping {
            return;
        }
        let next = held
            .front()
            .map(|(due, _)| due.saturating_duration_since(now));
        std::thread::sleep(next.map_or(POLL, |next| next.min(POLL)));
    }
}
