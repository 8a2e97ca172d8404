//! Bytes to text: the encoding of a subscriber file (UTF-8, or Windows-1252
//! as older Excel saves it), found in a first pass over the raw bytes, and the
//! decoded stream the CSV parser reads, which knows how far it got (for line
//! numbers). Decoding is `encoding_rs`'s; only the choice is ours.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result, bail};
use encoding_rs_io::{DecodeReaderBytes, DecodeReaderBytesBuilder};

use super::dialect::Sniffer;
use super::{SCAN_BUFFER, UTF8_BOM};

/// A subscriber file opened for parsing.
pub(super) struct Opened {
    pub(super) source: Source,
    pub(super) delimiter: u8,
    /// Whether the file starts with a UTF-8 byte order mark.
    pub(super) has_bom: bool,
    /// What the office should hear about the encoding.
    pub(super) warnings: Vec<String>,
}

/// Decides the encoding and delimiter of `file` (read from its start) and
/// returns the decoded stream; refuses UTF-16 and bytes no encoding explains.
pub(super) fn open(path: &Path, mut file: File) -> Result<Opened> {
    let shown = path.display();
    let read_error = || format!("cannot read `{shown}`");
    file.seek(SeekFrom::Start(0)).with_context(read_error)?;

    let mut head = [0u8; 3];
    let head_len = read_up_to(&mut file, &mut head).with_context(read_error)?;
    let head = &head[..head_len];
    if head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF") {
        bail!(
            "`{shown}` is saved as UTF-16 (\"Unicode Text\"): save it as CSV UTF-8 \
             (in Excel: File → Save As → CSV UTF-8)"
        );
    }
    let has_bom = head == UTF8_BOM;
    let start = if has_bom { UTF8_BOM.len() as u64 } else { 0 };
    file.seek(SeekFrom::Start(start)).with_context(read_error)?;

    let scan = scan(&mut file).with_context(read_error)?;
    let mut warnings = Vec::new();
    let cp1252 = match scan.first_invalid_line {
        None => false,
        Some(line) if has_bom || scan.cp1252_undefined => bail!(
            "`{shown}` line {line} is not valid UTF-8: save it as CSV UTF-8 \
             (in Excel: File → Save As → CSV UTF-8)"
        ),
        Some(_) => {
            warnings.push(format!(
                "`{shown}` is not UTF-8; read it as Windows-1252. \
                 Save it as \"CSV UTF-8\" to silence this warning"
            ));
            true
        }
    };
    file.seek(SeekFrom::Start(start)).with_context(read_error)?;

    let buffered = BufReader::new(file);
    let source = Source {
        decoder: if cp1252 {
            Decoder::Cp1252(windows_1252(buffered))
        } else {
            Decoder::Utf8(buffered)
        },
        cr_to_lf: scan.has_cr && !scan.has_lf,
        total: 0,
        last: 0,
        eof: false,
    };
    Ok(Opened {
        source,
        delimiter: scan.delimiter,
        has_bom,
        warnings,
    })
}

/// Windows-1252 bytes as UTF-8, streaming. The five bytes 1252 leaves
/// undefined never get here: [`scan`] refuses the file.
pub(super) fn windows_1252<R: Read>(inner: R) -> DecodeReaderBytes<R, Vec<u8>> {
    DecodeReaderBytesBuilder::new()
        .encoding(Some(encoding_rs::WINDOWS_1252))
        .bom_override(false)
        .build(inner)
}

/// What the first pass over the raw bytes found.
pub(super) struct Scan {
    /// Line of the first byte sequence that is not UTF-8, if any.
    pub(super) first_invalid_line: Option<u64>,
    /// Whether a byte undefined in Windows-1252 occurs (checked once UTF-8 failed).
    pub(super) cp1252_undefined: bool,
    pub(super) delimiter: u8,
    pub(super) has_cr: bool,
    pub(super) has_lf: bool,
}

/// Streams over the bytes once with a small buffer: checks UTF-8, looks for bytes
/// undefined in Windows-1252 and sniffs the delimiter of the header line.
pub(super) fn scan(input: &mut impl Read) -> io::Result<Scan> {
    let mut buf = vec![0u8; SCAN_BUFFER];
    let mut carry = 0; // bytes of an incomplete UTF-8 sequence kept from the last read
    let mut line = 1u64;
    let mut first_invalid_line = None;
    let mut cp1252_undefined = false;
    let mut sniffer = Sniffer::default();
    let (mut has_cr, mut has_lf) = (false, false);
    loop {
        let n = match input.read(&mut buf[carry..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let fresh = &buf[carry..carry + n];
        sniffer.feed(fresh);
        has_cr |= fresh.contains(&b'\r');
        has_lf |= fresh.contains(&b'\n');
        cp1252_undefined |= fresh
            .iter()
            .any(|b| matches!(b, 0x81 | 0x8D | 0x8F | 0x90 | 0x9D));
        let eof = n == 0;
        let data = &buf[..carry + n];
        carry = 0;
        if first_invalid_line.is_none() {
            match std::str::from_utf8(data) {
                Ok(_) => line += count_newlines(data),
                Err(e) => {
                    let valid = e.valid_up_to();
                    line += count_newlines(&data[..valid]);
                    if e.error_len().is_none() && !eof {
                        carry = data.len() - valid;
                        buf.copy_within(valid..valid + carry, 0);
                    } else {
                        first_invalid_line = Some(line);
                    }
                }
            }
        }
        if eof || first_invalid_line.is_some() && cp1252_undefined {
            break;
        }
    }
    Ok(Scan {
        first_invalid_line,
        cp1252_undefined,
        delimiter: sniffer.delimiter(),
        has_cr,
        has_lf,
    })
}

pub(super) fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Reads until `buf` is full or the input ends; returns the number of bytes read.
pub(super) fn read_up_to(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The byte stream the CSV reader parses: UTF-8, or Windows-1252 decoded; lone CRs
/// (old Mac files) turned into LFs. It remembers how far it got, for line numbers.
pub(super) struct Source {
    decoder: Decoder,
    cr_to_lf: bool,
    /// Bytes handed out so far.
    pub(super) total: u64,
    /// The last byte handed out.
    pub(super) last: u8,
    /// Whether the input has ended.
    pub(super) eof: bool,
}

enum Decoder {
    Utf8(BufReader<File>),
    Cp1252(DecodeReaderBytes<BufReader<File>, Vec<u8>>),
}

impl Read for Source {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = match &mut self.decoder {
            Decoder::Utf8(inner) => inner.read(out)?,
            Decoder::Cp1252(inner) => inner.read(out)?,
        };
        if n == 0 && !out.is_empty() {
            self.eof = true;
        }
        let read = &mut out[..n];
        if self.cr_to_lf {
            read.iter_mut()
                .filter(|b| **b == b'\r')
                .for_each(|b| *b = b'\n');
        }
        if let Some(&last) = read.last() {
            self.last = last;
        }
        self.total += n as u64;
        Ok(n)
    }
}
