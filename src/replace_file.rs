//! Replacing a file atomically: the subscriber file (keeping the previous
//! version as `FILE.bak`, [`replace`]) and the archive files (kept in version
//! control, [`replace_without_backup`]). Used under [`crate::lock::for_change`].

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Replaces `path` with what `write` produces: a synced temporary file in the
/// same folder, renamed over it after the old file is copied to `FILE.bak`.
/// `before` is the metadata of the file that was read: if `path` is no longer
/// that file, or it changed, nothing is replaced. Returns the backup's path.
pub(crate) fn replace(
    path: &Path,
    before: &fs::Metadata,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<PathBuf> {
    let backup = PathBuf::from(format!("{}.bak", path.display()));
    swap(path, before, write, Some(&backup))?;
    Ok(backup)
}

/// [`replace`] without the backup, for a file kept in version control (the
/// archive).
pub(crate) fn replace_without_backup(
    path: &Path,
    before: &fs::Metadata,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<()> {
    swap(path, before, write, None)
}

fn swap(
    path: &Path,
    before: &fs::Metadata,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    backup: Option<&Path>,
) -> Result<()> {
    let shown = path.display();
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = |what: &str| {
        tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(what)
            .tempfile_in(dir)
            .with_context(|| {
                format!(
                    "cannot create a file in `{}` next to `{shown}`: check the folder's permissions",
                    dir.display()
                )
            })
    };
    let write_error = || format!("cannot write the new `{shown}`; it is unchanged");

    let new = temp(".tmp")?;
    new.as_file()
        .set_permissions(before.permissions())
        .with_context(write_error)?;
    {
        let mut out = BufWriter::new(new.as_file());
        write(&mut out).with_context(write_error)?;
        out.flush().with_context(write_error)?;
    }
    new.as_file().sync_all().with_context(write_error)?;

    let now = fs::metadata(path).with_context(|| format!("cannot read `{shown}`"))?;
    if !same_version(before, &now) {
        bail!(
            "`{shown}` changed while it was being updated; it is left as it is. Run the command again"
        );
    }

    if let Some(backup) = backup {
        let copy = temp(".bak")?;
        let backup_error = || format!("cannot write the backup `{}`", backup.display());
        fs::copy(path, copy.path()).with_context(backup_error)?;
        copy.as_file().sync_all().with_context(backup_error)?;
        copy.persist(backup).with_context(backup_error)?;
    }
    new.persist(path)
        .with_context(|| format!("cannot replace `{shown}`; it is unchanged"))?;
    #[cfg(unix)]
    if let Ok(dir) = File::open(dir) {
        // Makes the rename itself durable.
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Whether `now` is still the file `before` described: the same file (not
/// one renamed over it), the same length and modification time.
fn same_version(before: &fs::Metadata, now: &fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if (now.dev(), now.ino()) != (before.dev(), before.ino()) {
            return false;
        }
    }
    now.len() == before.len() && now.modified().ok() == before.modified().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_renamed_over_is_another_version_even_with_the_same_size_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("list.csv");
        fs::write(&path, "email\na@example.org\n").unwrap();
        let before = fs::metadata(&path).unwrap();
        assert!(same_version(&before, &fs::metadata(&path).unwrap()));

        let other = dir.path().join("other.csv");
        fs::write(&other, "email\nb@example.org\n").unwrap();
        File::options()
            .write(true)
            .open(&other)
            .unwrap()
            .set_modified(before.modified().unwrap())
            .unwrap();
        fs::rename(&other, &path).unwrap();
        let now = fs::metadata(&path).unwrap();
        assert_eq!(now.len(), before.len());
        assert_eq!(now.modified().unwrap(), before.modified().unwrap());
        assert!(!same_version(&before, &now));
    }

    #[test]
    fn replace_refuses_a_file_that_changed_since_it_was_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("list.csv");
        fs::write(&path, "email\na@example.org\n").unwrap();
        let before = fs::metadata(&path).unwrap();
        fs::write(dir.path().join("new.csv"), "email\nb@example.org\n").unwrap();
        fs::rename(dir.path().join("new.csv"), &path).unwrap();
        let error = replace(&path, &before, |out| {
            out.write_all(b"email\nc@example.org\n")
        })
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("changed while it was being updated"),
            "{error}"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "email\nb@example.org\n");
        assert!(!dir.path().join("list.csv.bak").exists());
    }
}
