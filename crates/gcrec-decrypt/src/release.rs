//! Authenticated release: plaintext is written to a temporary file beside its
//! destination and only renamed into place once it has been verified.
//!
//! A [`PendingFile`] is created `0600` with a name no export key can produce
//! (`.{name}.gcrec-tmp-{random}`), in the destination's directory so the final rename is
//! atomic. [`PendingFile::release`] flushes, `fsync`s the file, renames it, and `fsync`s
//! the directory. Dropping a `PendingFile` that was not released removes it, so an
//! error anywhere — a failed tag, a truncated body, a panic — leaves nothing behind.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The marker in temporary file names. Anything containing it is a leftover of an
/// interrupted run and safe to delete.
pub const TEMP_MARKER: &str = ".gcrec-tmp-";

/// Creates `dir` and its missing parents with mode `0700`.
pub fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// A file being written that becomes visible at its destination only on
/// [`PendingFile::release`].
#[derive(Debug)]
pub struct PendingFile {
    temp: PathBuf,
    destination: PathBuf,
    writer: Option<BufWriter<File>>,
    written: u64,
}

impl PendingFile {
    /// Starts a file that will end up at `destination` (its directory is created `0700`
    /// if missing).
    pub fn create(destination: &Path) -> io::Result<Self> {
        let dir = destination.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(dir) = dir {
            create_private_dir_all(dir)?;
        }
        let name = destination
            .file_name()
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "destination has no file name")
            })?
            .to_string_lossy();
        let suffix: u64 = rand::random();
        let temp_name = format!(".{name}{TEMP_MARKER}{suffix:016x}");
        let temp = dir.map_or_else(|| PathBuf::from(&temp_name), |d| d.join(&temp_name));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&temp)?;
        Ok(Self {
            temp,
            destination: destination.to_owned(),
            writer: Some(BufWriter::with_capacity(1 << 20, file)),
            written: 0,
        })
    }

    /// Where the file will be released.
    pub fn destination(&self) -> &Path {
        &self.destination
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Makes the file visible at its destination: flush, fsync, rename, fsync the
    /// directory. Call only after the content has been verified.
    pub fn release(mut self) -> io::Result<PathBuf> {
        let writer = self
            .writer
            .take()
            .ok_or_else(|| io::Error::other("already released"))?;
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&self.temp, &self.destination)?;
        if let Some(dir) = self
            .destination
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            // Make the rename itself durable.
            File::open(dir)?.sync_all()?;
        }
        Ok(std::mem::take(&mut self.destination))
    }
}

impl Write for PendingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| io::Error::other("already released"))?;
        let n = writer.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.as_mut().map_or(Ok(()), Write::flush)
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if self.writer.is_some() {
            self.writer = None;
            let _ = fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn nothing_is_visible_until_release() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a/b/rec.opus");
        let mut f = PendingFile::create(&dest).unwrap();
        f.write_all(b"hello").unwrap();
        assert!(!dest.exists());
        assert_eq!(names(&dir.path().join("a/b")).len(), 1);
        assert!(names(&dir.path().join("a/b"))[0].contains(TEMP_MARKER));
        let path = f.release().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"hello");
        assert_eq!(names(&dir.path().join("a/b")), ["rec.opus"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&dest).unwrap().permissions().mode() & 0o777,
                0o600
            );
            let d = fs::metadata(dir.path().join("a"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(d, 0o700);
        }
    }

    #[test]
    fn dropping_an_unreleased_file_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("rec.opus");
        let mut f = PendingFile::create(&dest).unwrap();
        f.write_all(b"unverified").unwrap();
        drop(f);
        assert!(names(dir.path()).is_empty());
    }
}
