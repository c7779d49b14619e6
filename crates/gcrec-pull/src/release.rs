//! Authenticated release: plaintext is written to a temporary file beside its
//! destination and only renamed into place once it has been verified.
//!
//! A [`PendingFile`] is created `0600` (never through an existing file or link) with a
//! name no export key can produce — `.{name}.gcrec-tmp-{run}-{random}`, see
//! [`temp_name`] — in the destination's directory, so the final rename is atomic.
//! [`PendingFile::release`] flushes, `fsync`s the file, renames it, and `fsync`s the
//! directory. Dropping a `PendingFile` that was not released removes it, so an error
//! anywhere — a failed tag, a truncated body, a panic — leaves nothing behind.
//!
//! Directories are created `0700`, one component at a time below a root the caller
//! trusts, and a symbolic link met on the way is refused rather than followed
//! ([`create_dirs_inside`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

/// The marker in temporary file names.
pub const TEMP_MARKER: &str = ".gcrec-tmp-";

/// This process's run token: temporary files carry it, so a sweep can tell a leftover
/// of an earlier run (safe to delete) from a live file of this run.
fn run_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| format!("{:08x}", rand::random::<u32>()))
}

/// The temporary name for a destination file name: `.{name}.gcrec-tmp-{run}-{random}`,
/// with an 8-hex-digit run token and a 16-hex-digit random part.
pub fn temp_name(name: &str) -> String {
    format!(
        ".{name}{TEMP_MARKER}{}-{:016x}",
        run_token(),
        rand::random::<u64>()
    )
}

/// Whether `file_name` is a temporary file that an earlier run left (not one of this
/// run's): exactly the shape [`temp_name`] produces, with another run token. Export keys
/// can never produce it (output names holding [`TEMP_MARKER`] are refused), and a user's
/// file would have to match the whole shape to be taken for one.
pub fn is_stale_temp(file_name: &str) -> bool {
    let Some(rest) = file_name.strip_prefix('.') else {
        return false;
    };
    let Some((name, tail)) = rest.rsplit_once(TEMP_MARKER) else {
        return false;
    };
    let Some((run, random)) = tail.split_once('-') else {
        return false;
    };
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    !name.is_empty() && hex(run, 8) && hex(random, 16) && run != run_token()
}

/// Bytes free for an unprivileged writer on the file system holding `path`, or its
/// nearest existing ancestor (an output directory not made yet).
pub fn free_space(path: &Path) -> Option<u64> {
    path.ancestors().find_map(|p| {
        rustix::fs::statvfs(p)
            .ok()
            .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
    })
}

/// Creates `dir` and its missing parents with mode `0700`.
pub fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates the directories of `dir` below `root` (which must exist), `0700`, one
/// component at a time, refusing to follow a symbolic link or to pass anything that is
/// not a directory. `dir` must be `root` or lie under it.
pub fn create_dirs_inside(root: &Path, dir: &Path) -> io::Result<()> {
    let rest = dir.strip_prefix(root).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not under {}", dir.display(), root.display()),
        )
    })?;
    let mut path = root.to_path_buf();
    for component in rest.components() {
        let Component::Normal(name) = component else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a plain path", dir.display()),
            ));
        };
        path.push(name);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_dir() => continue,
            Ok(m) if m.file_type().is_symlink() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{} is a symbolic link; gcrec does not follow links inside its output directory",
                        path.display()
                    ),
                ));
            }
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a directory", path.display()),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut builder = fs::DirBuilder::new();
                #[cfg(unix)]
                std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
                match builder.create(&path) {
                    Ok(()) => {}
                    // Another task of this run made it meanwhile: check it on the next turn.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        if !fs::symlink_metadata(&path)?.file_type().is_dir() {
                            return Err(e);
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Bytes a pending file gathers before each write(2): large enough that a write costs
/// little per byte, small enough that the few files being written at once stay cheap
/// (1 MiB buffers freed and reallocated for every object kept glibc's heap large).
const WRITE_BUFFER: usize = 256 * 1024;

/// Pieces at least this large are written to the file directly: the buffer gathers the
/// small pieces a network stream hands over, and a decryptor's 256 KiB batches copied
/// through it cost a memmove of every plaintext byte (and a write(2) split in two).
const DIRECT_WRITE: usize = 64 * 1024;

/// Bytes written between early write-back requests for a large file.
pub const WRITE_BACK_EVERY: u64 = 64 << 20;

/// Early write-back: a thread that `fdatasync`s a file (through its own handle) each
/// time the writer has added [`WRITE_BACK_EVERY`] bytes, so the page cache drains to disk
/// while decryption goes on and the final fsync before the rename has little left —
/// without it a multi-GiB output is written twice as long as it is decrypted. A thread
/// and a second handle rather than `sync_file_range`, which would need `unsafe`.
#[derive(Debug)]
struct WriteBack {
    nudge: std::sync::mpsc::SyncSender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl WriteBack {
    fn start(file: &File) -> Option<Self> {
        let handle = file.try_clone().ok()?;
        let (nudge, requests) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("gcrec-write-back".into())
            .spawn(move || {
                while requests.recv().is_ok() {
                    // A failure here shows again, and fails the release, in the final
                    // fsync.
                    let _ = handle.sync_data();
                }
            })
            .ok()?;
        Some(Self { nudge, thread })
    }

    /// Asks for a write-back unless one is already waiting.
    fn request(&self) {
        let _ = self.nudge.try_send(());
    }

    /// Waits for the write-back under way, if any, and ends the thread.
    fn finish(self) {
        drop(self.nudge);
        let _ = self.thread.join();
    }
}

/// A file being written that becomes visible at its destination only on
/// [`PendingFile::release`].
#[derive(Debug)]
pub struct PendingFile {
    temp: PathBuf,
    destination: PathBuf,
    writer: Option<BufWriter<File>>,
    written: u64,
    limit: Option<u64>,
    write_back: Option<WriteBack>,
    /// How many write-backs were asked for (one per [`WRITE_BACK_EVERY`] bytes).
    write_backs: u64,
}

impl PendingFile {
    /// Starts a file that will end up at `destination`, whose directory must exist
    /// (see [`create_dirs_inside`]).
    pub fn create(destination: &Path) -> io::Result<Self> {
        let dir = destination.parent().filter(|p| !p.as_os_str().is_empty());
        let name = destination
            .file_name()
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "destination has no file name")
            })?
            .to_string_lossy();
        let temp_name = temp_name(&name);
        let temp = dir.map_or_else(|| PathBuf::from(&temp_name), |d| d.join(&temp_name));
        let mut options = OpenOptions::new();
        // `create_new` never opens an existing file and never follows a link.
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&temp)?;
        Ok(Self {
            temp,
            destination: destination.to_owned(),
            writer: Some(BufWriter::with_capacity(WRITE_BUFFER, file)),
            written: 0,
            limit: None,
            write_back: None,
            write_backs: 0,
        })
    }

    /// Refuses (with [`io::ErrorKind::FileTooLarge`]) any write past `bytes`: the most
    /// this file may hold (an expansion limit, the free space checked for).
    pub fn limit(mut self, bytes: u64) -> Self {
        self.limit = Some(bytes);
        self
    }

    /// Where the file will be released.
    pub fn destination(&self) -> &Path {
        &self.destination
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// How many early write-backs were asked for so far.
    pub fn write_backs(&self) -> u64 {
        self.write_backs
    }

    /// Makes the file visible at its destination: flush, fsync, rename, fsync the
    /// directory. Call only after the content has been verified.
    pub fn release(mut self) -> io::Result<PathBuf> {
        let writer = self
            .writer
            .take()
            .ok_or_else(|| io::Error::other("already released"))?;
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        if let Some(w) = self.write_back.take() {
            w.finish();
        }
        file.sync_all()?;
        drop(file);
        // `rename` replaces a link at the destination; it never writes through it.
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

/// Seeking (for writers that fill in a header last, as a WAV writer does) flushes the
/// buffer; [`PendingFile::written`] then counts bytes written, not the file's length.
impl io::Seek for PendingFile {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        self.writer
            .as_mut()
            .ok_or_else(|| io::Error::other("already released"))?
            .seek(pos)
    }
}

impl Write for PendingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(limit) = self.limit
            && self.written + buf.len() as u64 > limit
        {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("more than the {limit} bytes allowed for this file"),
            ));
        }
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| io::Error::other("already released"))?;
        let n = if buf.len() >= DIRECT_WRITE {
            // What is buffered goes first (a no-op when nothing is); the piece itself is
            // not copied into the buffer on its way.
            writer.flush()?;
            writer.get_mut().write(buf)?
        } else {
            writer.write(buf)?
        };
        self.written += n as u64;
        if self.written / WRITE_BACK_EVERY > self.write_backs {
            self.write_backs = self.written / WRITE_BACK_EVERY;
            if self.write_back.is_none() {
                self.write_back = WriteBack::start(writer.get_ref());
            }
            if let Some(w) = &self.write_back {
                w.request();
            }
        }
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
    fn a_large_file_is_written_back_early_and_released_whole() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("big.opus");
        let mut pending = PendingFile::create(&dest).unwrap();
        let block: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
        for _ in 0..((2 * WRITE_BACK_EVERY) >> 20) + 3 {
            pending.write_all(&block).unwrap();
        }
        assert_eq!(pending.write_backs(), 2);
        pending.release().unwrap();
        let got = fs::read(&dest).unwrap();
        assert_eq!(got.len() as u64, 2 * WRITE_BACK_EVERY + 3 * (1 << 20));
        assert!(got.chunks(1 << 20).all(|c| c == block.as_slice()));
        // A file abandoned mid-way leaves nothing, write-back thread or not.
        let mut pending = PendingFile::create(&dir.path().join("gone.opus")).unwrap();
        for _ in 0..(WRITE_BACK_EVERY >> 20) + 1 {
            pending.write_all(&block).unwrap();
        }
        drop(pending);
        assert_eq!(names(dir.path()), vec!["big.opus"]);
    }

    #[test]
    fn small_and_large_pieces_in_any_mix_land_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("mixed.opus");
        let mut pending = PendingFile::create(&dest).unwrap();
        let mut expected = Vec::new();
        // Around the direct-write size, the buffer's size, and tiny pieces between.
        let sizes = [
            22,
            DIRECT_WRITE - 1,
            DIRECT_WRITE,
            1,
            WRITE_BUFFER - 22,
            WRITE_BUFFER,
            7,
            3 * WRITE_BUFFER + 5,
            DIRECT_WRITE + 1,
            0,
            13,
        ];
        for (i, size) in sizes.into_iter().enumerate() {
            let piece: Vec<u8> = (0..size).map(|j| ((i * 31 + j) % 253) as u8).collect();
            pending.write_all(&piece).unwrap();
            expected.extend_from_slice(&piece);
        }
        assert_eq!(pending.written(), expected.len() as u64);
        pending.release().unwrap();
        assert!(fs::read(&dest).unwrap() == expected);
    }

    #[test]
    fn nothing_is_visible_until_release() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a/b/rec.opus");
        create_dirs_inside(dir.path(), dest.parent().unwrap()).unwrap();
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

    #[test]
    fn a_limit_stops_the_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = PendingFile::create(&dir.path().join("x")).unwrap().limit(4);
        f.write_all(b"1234").unwrap();
        let err = f.write_all(b"5").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
    }

    #[test]
    fn only_other_runs_temp_files_are_stale() {
        let mine = temp_name("rec.opus");
        assert!(!is_stale_temp(&mine), "this run's own temp file is live");
        let other = format!(".rec.opus{TEMP_MARKER}0badc0de-{:016x}", 7);
        assert!(is_stale_temp(&other));
        for user_file in [
            "notes.gcrec-tmp-old.txt",
            ".rec.opus.gcrec-tmp-",
            ".rec.opus.gcrec-tmp-zz",
            "rec.opus.gcrec-tmp-0badc0de-0000000000000007",
            &format!(".{TEMP_MARKER}0badc0de-{:016x}", 7),
        ] {
            assert!(!is_stale_temp(user_file), "{user_file}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn links_inside_the_output_are_refused_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("org")).unwrap();
        let err = create_dirs_inside(dir.path(), &dir.path().join("org/year=2024")).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(names(elsewhere.path()).is_empty());
    }
}
