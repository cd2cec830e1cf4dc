//! The poller's position in each shard: the last sequence number handed on
//! (delivered or discarded), and whether the shard is closed and fully read.
//!
//! They are kept in a JSON file of the data folder, as Lambda keeps the
//! position of an event source mapping. So a restart does not replay the
//! stream, which would bring acknowledged messages back into inboxes, and
//! does not skip records written while the stack was down. A file written for another stream ARN
//! (the table was re-created) is ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tracing::info;

/// The checkpoint file, in the data folder.
pub const CHECKPOINT_FILE: &str = "stream-checkpoints.json";

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct CheckpointFile {
    stream_arn: String,
    shards: BTreeMap<String, ShardCheckpoint>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct ShardCheckpoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sequence_number: Option<String>,
    #[serde(default)]
    finished: bool,
}

/// The positions of one stream's shards, in memory or also on disk.
#[derive(Debug)]
pub struct Checkpoints {
    path: Option<PathBuf>,
    state: Mutex<CheckpointFile>,
}

impl Checkpoints {
    /// Positions kept in memory only: every start reads from the trim horizon.
    pub fn in_memory(stream_arn: &str) -> Self {
        Self {
            path: None,
            state: Mutex::new(CheckpointFile {
                stream_arn: stream_arn.to_owned(),
                shards: BTreeMap::new(),
            }),
        }
    }

    /// Loads the positions stored in `data_dir` for `stream_arn`, or none.
    ///
    /// # Errors
    ///
    /// When the file exists but cannot be read or parsed.
    pub fn load(data_dir: &Path, stream_arn: &str) -> Result<Self> {
        let path = data_dir.join(CHECKPOINT_FILE);
        let mut state = CheckpointFile {
            stream_arn: stream_arn.to_owned(),
            shards: BTreeMap::new(),
        };
        match std::fs::read(&path) {
            Ok(bytes) => {
                let stored: CheckpointFile = serde_json::from_slice(&bytes)
                    .with_context(|| format!("{} is not a checkpoint file", path.display()))?;
                if stored.stream_arn == stream_arn {
                    state = stored;
                } else {
                    info!(
                        stored = %stored.stream_arn,
                        current = %stream_arn,
                        "stream checkpoints are for another stream; reading from the trim horizon"
                    );
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                return Err(err).with_context(|| format!("reading {} failed", path.display()));
            }
        }
        Ok(Self {
            path: Some(path),
            state: Mutex::new(state),
        })
    }

    /// Returns the last sequence number handed on from `shard_id`.
    pub fn sequence_number(&self, shard_id: &str) -> Option<String> {
        self.lock()
            .shards
            .get(shard_id)
            .and_then(|shard| shard.sequence_number.clone())
    }

    /// Returns whether `shard_id` is closed and was read to its end.
    pub fn is_finished(&self, shard_id: &str) -> bool {
        self.lock()
            .shards
            .get(shard_id)
            .is_some_and(|shard| shard.finished)
    }

    /// Records that every record of `shard_id` up to `sequence_number` was handed on.
    ///
    /// # Errors
    ///
    /// When the file cannot be written.
    pub fn advance(&self, shard_id: &str, sequence_number: &str) -> Result<()> {
        self.update(|state| {
            state
                .shards
                .entry(shard_id.to_owned())
                .or_default()
                .sequence_number = Some(sequence_number.to_owned());
        })
    }

    /// Forgets the position in `shard_id`, so that reading starts again at
    /// the trim horizon.
    ///
    /// # Errors
    ///
    /// When the file cannot be written.
    pub fn reset(&self, shard_id: &str) -> Result<()> {
        self.update(|state| {
            state
                .shards
                .entry(shard_id.to_owned())
                .or_default()
                .sequence_number = None;
        })
    }

    /// Records that `shard_id` was read to its end.
    ///
    /// # Errors
    ///
    /// When the file cannot be written.
    pub fn finish(&self, shard_id: &str) -> Result<()> {
        self.update(|state| {
            state
                .shards
                .entry(shard_id.to_owned())
                .or_default()
                .finished = true;
        })
    }

    fn update(&self, change: impl FnOnce(&mut CheckpointFile)) -> Result<()> {
        let snapshot = {
            let mut state = self.lock();
            change(&mut state);
            state.clone()
        };
        let Some(path) = &self.path else {
            return Ok(());
        };
        // Write then rename, so that a crash leaves the old file or the new one.
        let temporary = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(&snapshot)?;
        std::fs::write(&temporary, bytes)
            .with_context(|| format!("writing {} failed", temporary.display()))?;
        std::fs::rename(&temporary, path)
            .with_context(|| format!("replacing {} failed", path.display()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CheckpointFile> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_reload_for_the_same_stream() {
        let dir =
            std::env::temp_dir().join(format!("chat-local-checkpoints-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();

        let checkpoints = Checkpoints::load(&dir, "arn:a").unwrap();
        checkpoints
            .advance("shard-1", "100000000000000000005")
            .unwrap();
        checkpoints.finish("shard-0").unwrap();

        let reloaded = Checkpoints::load(&dir, "arn:a").unwrap();
        assert_eq!(
            reloaded.sequence_number("shard-1").as_deref(),
            Some("100000000000000000005")
        );
        assert!(reloaded.is_finished("shard-0"));
        assert!(!reloaded.is_finished("shard-1"));

        let other_stream = Checkpoints::load(&dir, "arn:b").unwrap();
        assert_eq!(other_stream.sequence_number("shard-1"), None);

        std::fs::remove_dir_all(&dir).unwrap();
    }
}
