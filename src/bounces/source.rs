//! Where bounce messages come from: `.eml` files, folders of them, and
//! mbox files.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use mail_parser::mailbox::mbox::MessageIterator;

/// One message and where it came from, for reports.
pub struct Item {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Calls `f` for every message under `paths`, in a stable order. Files in
/// folders are read when they end in `.eml` or `.mbox`; other files there
/// are returned as ignored.
pub fn each(paths: &[PathBuf], mut f: impl FnMut(Item)) -> Result<Vec<PathBuf>> {
    let mut ignored = Vec::new();
    for path in paths {
        let metadata = std::fs::metadata(path)
            .with_context(|| format!("cannot read `{}`: check the path", path.display()))?;
        if metadata.is_dir() {
            let mut files = Vec::new();
            walk(path, &mut files, &mut ignored)?;
            for file in files {
                read_file(&file, &mut f)?;
            }
        } else {
            read_file(path, &mut f)?;
        }
    }
    Ok(ignored)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, ignored: &mut Vec<PathBuf>) -> Result<()> {
    let error = || format!("cannot read the folder `{}`", dir.display());
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(error)?
        .collect::<Result<_, _>>()
        .with_context(error)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type().with_context(error)?.is_dir() {
            walk(&path, files, ignored)?;
            continue;
        }
        let extension = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match extension.as_deref() {
            Some("eml" | "mbox") => files.push(path),
            _ => ignored.push(path),
        }
    }
    Ok(())
}

/// A file holding one message, or an mbox (it starts with `From `).
fn read_file(path: &Path, f: &mut impl FnMut(Item)) -> Result<()> {
    let shown = path.display();
    let error = || format!("cannot read `{shown}`");
    let mut file = File::open(path).with_context(error)?;
    let mut bytes = Vec::new();
    file.by_ref()
        .take(5)
        .read_to_end(&mut bytes)
        .with_context(error)?;
    if bytes != b"From " {
        file.read_to_end(&mut bytes).with_context(error)?;
        f(Item {
            name: shown.to_string(),
            bytes,
        });
        return Ok(());
    }
    let mut reader = BufReader::new(File::open(path).with_context(error)?);
    let mut count = 0;
    for message in MessageIterator::new(&mut reader) {
        count += 1;
        let message = message.with_context(error)?;
        f(Item {
            name: format!("{shown} (message {count})"),
            bytes: message.unwrap_contents(),
        });
    }
    if count == 0 {
        bail!("`{shown}` looks like an mbox file but holds no message");
    }
    Ok(())
}
