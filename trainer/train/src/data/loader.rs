//! Batches made ahead on background threads through a bounded queue, handed out in order:
//! batch `i` depends only on the seed and `i`, so a run (and a resumed run) sees the same
//! stream whatever the thread timing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::{make_batch, Batch, Conditioning, DataSources};
use crate::config::DataConfig;

/// A running background loader.
pub struct Loader {
    rx: Option<Receiver<(u64, Batch)>>,
    next: u64,
    pending: BTreeMap<u64, Batch>,
    stop: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
}

impl Loader {
    /// Starts `cfg.workers` threads making batches `first`, `first + 1`, ... with at most
    /// `cfg.queue` waiting.
    pub fn start(
        sources: Arc<DataSources>,
        cond: Arc<Conditioning>,
        cfg: &DataConfig,
        first: u64,
    ) -> Loader {
        let (tx, rx) = sync_channel(cfg.queue);
        let counter = Arc::new(AtomicU64::new(first));
        let stop = Arc::new(AtomicU64::new(0));
        let threads = (0..cfg.workers)
            .map(|_| {
                let (tx, counter, stop) = (tx.clone(), counter.clone(), stop.clone());
                let (sources, cond, cfg) = (sources.clone(), cond.clone(), cfg.clone());
                std::thread::spawn(move || loop {
                    if stop.load(Ordering::Relaxed) != 0 {
                        return;
                    }
                    let i = counter.fetch_add(1, Ordering::Relaxed);
                    let b = make_batch(&sources, &cond, &cfg, cfg.seed, i);
                    if tx.send((i, b)).is_err() {
                        return;
                    }
                })
            })
            .collect();
        Loader {
            rx: Some(rx),
            next: first,
            pending: BTreeMap::new(),
            stop,
            threads,
        }
    }

    /// The next batch in order.
    pub fn next_batch(&mut self) -> Batch {
        loop {
            if let Some(b) = self.pending.remove(&self.next) {
                self.next += 1;
                return b;
            }
            let (i, b) = self
                .rx
                .as_ref()
                .expect("running")
                .recv()
                .expect("loader threads run until dropped");
            self.pending.insert(i, b);
        }
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.stop.store(1, Ordering::Relaxed);
        // Dropping the receiver fails the workers' pending sends, so they all return.
        self.rx = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
