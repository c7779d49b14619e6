//! Removing the temporary files an interrupted run left behind.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::release::is_stale_temp;

/// Directories remembered as swept; past this the memory is dropped and a directory
/// may be swept again (harmless: a sweep never touches this run's own files).
const REMEMBERED: usize = 4096;

/// Sweeps each directory a run writes to, once (or again after [`REMEMBERED`] others):
/// regular files that are temporaries of another run ([`is_stale_temp`]) are removed;
/// nothing else is touched.
#[derive(Debug, Default)]
pub struct Sweeper {
    swept: Mutex<HashSet<PathBuf>>,
}

impl Sweeper {
    /// Sweeps the directory `file` will be written in, unless it was just swept.
    pub fn sweep(&self, file: &Path) {
        let Some(dir) = file.parent() else { return };
        {
            let Ok(mut swept) = self.swept.lock() else {
                return;
            };
            if swept.contains(dir) {
                return;
            }
            if swept.len() >= REMEMBERED {
                swept.clear();
            }
            swept.insert(dir.to_path_buf());
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let stale = entry.file_name().to_str().is_some_and(is_stale_temp);
            if stale && entry.file_type().is_ok_and(|t| t.is_file()) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}
