//! Named client-side rate limits: at most `requests` sends in any sliding window of `per`, shared by every
//! request of the client that names the budget. Each attempt on the wire counts (retries too), because that
//! is what the server's own limit counts.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) struct Budgets {
    windows: HashMap<String, Window>,
}

pub(crate) struct Window {
    requests: usize,
    per: Duration,
    /// When each of the last `requests` sends happened, oldest first.
    sent: Mutex<VecDeque<Instant>>,
}

impl Budgets {
    pub(crate) fn new(budgets: &[crate::model::Budget]) -> Budgets {
        let windows = budgets
            .iter()
            .map(|b| {
                // A budget of 0 would block forever; validation rejects it, and one request at a time is
                // the closest safe reading if it ever gets here.
                let requests = (b.requests as usize).max(1);
                let window = Window { requests, per: b.per, sent: Mutex::new(VecDeque::with_capacity(requests)) };
                (b.name.clone(), window)
            })
            .collect();
        Budgets { windows }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Window> {
        self.windows.get(name)
    }
}

impl Window {
    /// Waits until one more send fits in the window, then records it.
    pub(crate) async fn acquire(&self) {
        loop {
            // The lock is never held across the sleep; a waiter re-checks after waking because another
            // request may have taken the slot meanwhile.
            let wait = {
                let mut sent = self.sent.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let now = Instant::now();
                while sent.front().is_some_and(|at| now.duration_since(*at) >= self.per) {
                    sent.pop_front();
                }
                if sent.len() < self.requests {
                    sent.push_back(now);
                    return;
                }
                self.per.saturating_sub(now.duration_since(sent[0]))
            };
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }
}
