//! Output files written whole or not at all. Every report, summary, result document
//! and generated script is first written to a temporary file in the folder of its
//! final path, then renamed over it: a full disk or a failing writer leaves the
//! previous file as it was (no truncated report), and a reader never sees half a
//! file. [`StagedFiles`] does the same for a report made of several files (LoadDensity's
//! `NAME_success.json` + `NAME_failure.json`): every file is written first, then all
//! are renamed, so the set appears whole or not at all.
//!
//! A path that is a symbolic link to a file replaces the file it points to (as a plain
//! write would). A path that exists and is not a regular file (`/dev/null`,
//! `/dev/stdout`, a named pipe) is written in place: it cannot be replaced, and must
//! not be. [`write_new`] refuses any existing entry, a dangling symbolic link included
//! (create-new semantics, for scaffolding and `--force`-less writes).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// An output file that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The temporary file beside the output could not be created or written.
    #[error("{file}: cannot write: {source}")]
    Write {
        /// The output file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The finished file could not be moved into place.
    #[error("{file}: cannot replace it: {source}")]
    Replace {
        /// The output file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The output path is a directory.
    #[error("{file}: is a directory, not a file")]
    IsDirectory {
        /// The output path.
        file: String,
    },
    /// The file exists and must not be overwritten.
    #[error("{file}: already exists; not overwriting it")]
    Exists {
        /// The output file.
        file: String,
    },
}

/// Writes `contents` to `path` through a temporary file renamed into place.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), OutputError> {
    write_atomically_with(path, |file| file.write_all(contents))
}

/// Writes `path` through a temporary file renamed into place; `write` fills the
/// file (for streaming writers). On any error the previous `path` is left as it was.
pub fn write_atomically_with<T>(
    path: &Path,
    write: impl FnOnce(&mut File) -> std::io::Result<T>,
) -> Result<T, OutputError> {
    let mut staged = StagedFiles::new();
    let value = {
        let file = staged.create(path)?;
        write(file).map_err(|source| write_error(path, source))?
    };
    staged.commit()?;
    Ok(value)
}

/// Writes `contents` to a new file `path`, refusing any existing entry there (a
/// dangling symbolic link included); the file appears whole or not at all.
pub fn write_new(path: &Path, contents: &[u8]) -> Result<(), OutputError> {
    if path.symlink_metadata().is_ok() {
        return Err(OutputError::Exists {
            file: path.display().to_string(),
        });
    }
    let mut temp = temp_beside(path)?;
    temp.write_all(contents)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|source| write_error(path, source))?;
    temp.persist_noclobber(path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            OutputError::Exists {
                file: path.display().to_string(),
            }
        } else {
            OutputError::Replace {
                file: path.display().to_string(),
                source: e.error,
            }
        }
    })?;
    Ok(())
}

/// Files written beside their final paths and renamed into place together by
/// [`StagedFiles::commit`]. Dropped without a commit, it deletes its temporary files
/// and leaves every final path as it was.
#[derive(Debug, Default)]
pub struct StagedFiles {
    files: Vec<(PathBuf, Staged)>,
}

/// One file of a [`StagedFiles`].
#[derive(Debug)]
enum Staged {
    /// A temporary file beside the final path, renamed over it at the commit.
    Temporary(NamedTempFile),
    /// An existing special file (a device, a pipe), written in place.
    InPlace(File),
}

impl StagedFiles {
    /// No files yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new, empty temporary file that [`StagedFiles::commit`] renames to `path`
    /// (or, when `path` is an existing special file such as `/dev/null`, that file
    /// opened for writing in place).
    pub fn create(&mut self, path: &Path) -> Result<&mut File, OutputError> {
        let target = final_path(path)?;
        let staged = match std::fs::metadata(&target) {
            Ok(meta) if !meta.is_file() => Staged::InPlace(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&target)
                    .map_err(|source| write_error(path, source))?,
            ),
            _ => Staged::Temporary(temp_beside(&target)?),
        };
        self.files.push((target, staged));
        let index = self.files.len() - 1;
        Ok(match &mut self.files[index].1 {
            Staged::Temporary(temp) => temp.as_file_mut(),
            Staged::InPlace(file) => file,
        })
    }

    /// Flushes every file to disk, then renames each into place. Every final path is
    /// checked before the first rename, so a path that cannot be replaced leaves all
    /// of them as they were.
    pub fn commit(self) -> Result<(), OutputError> {
        for (target, staged) in &self.files {
            let Staged::Temporary(temp) = staged else {
                continue;
            };
            if target.is_dir() {
                return Err(OutputError::IsDirectory {
                    file: target.display().to_string(),
                });
            }
            temp.as_file()
                .sync_all()
                .map_err(|source| write_error(target, source))?;
        }
        for (target, staged) in self.files {
            if let Staged::Temporary(temp) = staged {
                temp.persist(&target).map_err(|e| OutputError::Replace {
                    file: target.display().to_string(),
                    source: e.error,
                })?;
            }
        }
        Ok(())
    }
}

/// Where a write to `path` lands: the file a symbolic link points to, else `path`.
fn final_path(path: &Path) -> Result<PathBuf, OutputError> {
    if path.is_dir() {
        return Err(OutputError::IsDirectory {
            file: path.display().to_string(),
        });
    }
    Ok(std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()))
}

/// A temporary file in `path`'s folder, with the permissions a plain write would give
/// (the existing file's, else 0666 less the umask).
fn temp_beside(path: &Path) -> Result<NamedTempFile, OutputError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut builder = tempfile::Builder::new();
    let prefix = format!(".{name}.");
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let temp = builder
        .tempfile_in(dir)
        .map_err(|source| write_error(path, source))?;
    if let Ok(existing) = std::fs::metadata(path) {
        std::fs::set_permissions(temp.path(), existing.permissions())
            .map_err(|source| write_error(path, source))?;
    }
    Ok(temp)
}

fn write_error(path: &Path, source: std::io::Error) -> OutputError {
    OutputError::Write {
        file: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::{OutputError, StagedFiles, write_atomically, write_atomically_with, write_new};
    use std::io::Write;

    #[test]
    fn replaces_a_file_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("report.html");
        write_atomically(&path, b"first").expect("write");
        write_atomically(&path, b"second").expect("rewrite");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "second");
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
    }

    #[test]
    fn a_failing_writer_leaves_the_previous_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("report.csv");
        std::fs::write(&path, "good").expect("write");
        let error = write_atomically_with(&path, |file| {
            file.write_all(b"half")?;
            Err::<(), _>(std::io::Error::other("disk full"))
        })
        .expect_err("fails");
        assert!(error.to_string().contains("report.csv"), "{error}");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "good");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
    }

    #[test]
    fn a_set_appears_whole_or_not_at_all() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = dir.path().join("r_success.json");
        let second = dir.path().join("r_failure.json");
        std::fs::write(&first, "good").expect("write");
        std::fs::create_dir(&second).expect("mkdir");
        let mut staged = StagedFiles::new();
        staged
            .create(&first)
            .expect("first")
            .write_all(b"new")
            .expect("write");
        // The second path is a directory: refused before anything is renamed.
        assert!(matches!(
            staged.create(&second),
            Err(OutputError::IsDirectory { .. })
        ));
        drop(staged);
        assert_eq!(std::fs::read_to_string(&first).expect("read"), "good");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 2);
    }

    #[test]
    fn write_new_refuses_existing_entries_and_dangling_links() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("new.json");
        write_new(&path, b"1").expect("new");
        assert!(matches!(
            write_new(&path, b"2"),
            Err(OutputError::Exists { .. })
        ));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "1");
        #[cfg(unix)]
        {
            let link = dir.path().join("link.json");
            let target = dir.path().join("elsewhere.json");
            std::os::unix::fs::symlink(&target, &link).expect("symlink");
            assert!(matches!(
                write_new(&link, b"3"),
                Err(OutputError::Exists { .. })
            ));
            assert!(!target.exists(), "the link's target was created");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_special_file_is_written_in_place() {
        // /dev/null stays the device: nothing is renamed over it.
        write_atomically(std::path::Path::new("/dev/null"), b"report").expect("write");
        let meta = std::fs::metadata("/dev/null").expect("/dev/null");
        assert!(!meta.is_file(), "/dev/null became a regular file");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut staged = StagedFiles::new();
        staged
            .create(std::path::Path::new("/dev/null"))
            .expect("in place")
            .write_all(b"x")
            .expect("write");
        staged
            .create(&dir.path().join("r.xml"))
            .expect("temporary")
            .write_all(b"y")
            .expect("write");
        staged.commit().expect("commit");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("r.xml")).expect("read"),
            "y"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_replaces_the_file_it_points_to() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("real.html");
        let link = dir.path().join("link.html");
        std::fs::write(&target, "old").expect("write");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        write_atomically(&link, b"new").expect("write");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "new");
        assert!(
            link.symlink_metadata()
                .expect("link")
                .file_type()
                .is_symlink()
        );
    }
}
