//! Waiting, at shutdown, for tasks that were spawned one by one (a WebSocket
//! connection, an S3 notification), with no handle kept for each.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::mpsc;

/// Counts live tasks: each has a [`TaskGuard`], and [`TaskTracker::close_and_wait`]
/// returns once every guard is dropped.
#[derive(Debug)]
pub struct TaskTracker {
    sender: Mutex<Option<mpsc::Sender<()>>>,
    receiver: tokio::sync::Mutex<mpsc::Receiver<()>>,
}

/// Held by a live task; dropping it ends the task's share in the tracker.
#[derive(Debug)]
pub struct TaskGuard {
    _sender: mpsc::Sender<()>,
}

impl Default for TaskTracker {
    fn default() -> Self {
        let (sender, receiver) = mpsc::channel(1);
        Self {
            sender: Mutex::new(Some(sender)),
            receiver: tokio::sync::Mutex::new(receiver),
        }
    }
}

impl TaskTracker {
    /// Returns a guard for a new task, or `None` once the tracker is closed.
    pub fn track(&self) -> Option<TaskGuard> {
        self.lock().as_ref().map(|sender| TaskGuard {
            _sender: sender.clone(),
        })
    }

    /// Stops handing out guards and waits, at most `timeout`, until every
    /// guard is dropped. Returns whether they all were.
    pub async fn close_and_wait(&self, timeout: Duration) -> bool {
        self.lock().take();
        let mut receiver = self.receiver.lock().await;
        // `recv` returns `None` once every sender, so every guard, is gone.
        tokio::time::timeout(timeout, receiver.recv()).await.is_ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<mpsc::Sender<()>>> {
        self.sender
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn close_and_wait_returns_after_last_guard() {
        let tracker = TaskTracker::default();
        let guard = tracker.track().expect("an open tracker hands out guards");
        let task = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(guard);
        });
        assert!(tracker.close_and_wait(Duration::from_secs(10)).await);
        assert!(tracker.track().is_none());
        task.await.expect("the task does not panic");
    }

    #[tokio::test]
    async fn close_and_wait_times_out() {
        let tracker = TaskTracker::default();
        let _guard = tracker.track();
        assert!(!tracker.close_and_wait(Duration::from_millis(10)).await);
    }
}
