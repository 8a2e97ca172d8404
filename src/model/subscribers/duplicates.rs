//! Finding the same address twice: hashed keys and the in-memory filter.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use super::Subscriber;
use sha2::{Digest, Sha256};

/// Remembers the addresses seen so far, to find duplicates.
///
/// Memory: a 128-bit hash (SHA-256, truncated) and a line number per distinct address
/// (about 50 MB per million), not the address itself. For whole lists use
/// [`Survey::duplicates_index`] instead, whose memory does not grow with the list. Feed
/// it the rows that would be mailed (status subscribed), in file order, so the counts
/// match [`survey`].
#[derive(Debug, Default)]
pub struct DuplicateFilter {
    pub(super) seen: HashMap<KeyHash, u64, BuildHasherDefault<PassThrough>>,
}

impl DuplicateFilter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Some(first_line) if this address (by [`Subscriber::key`]) was seen before.
    pub fn check(&mut self, s: &Subscriber) -> Option<u64> {
        match self.seen.entry(KeyHash::of(&s.key)) {
            Entry::Occupied(first) => Some(*first.get()),
            Entry::Vacant(slot) => {
                slot.insert(s.line);
                None
            }
        }
    }
}

/// The first 128 bits of a SHA-256 of an address: collisions are negligible (about
/// 10^-25 for 10^7 addresses), and nobody can craft one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyHash(pub u64, pub u64);

impl KeyHash {
    /// The hash of a lowercased address ([`Subscriber::key`]).
    pub fn of(key: &str) -> KeyHash {
        let digest = Sha256::digest(key.as_bytes());
        let half = |range: std::ops::Range<usize>| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&digest[range]);
            u64::from_le_bytes(bytes)
        };
        KeyHash(half(0..8), half(8..16))
    }
}

impl Hash for KeyHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Already uniformly distributed: no need to hash it again.
        state.write_u64(self.0);
    }
}

/// A [`Hasher`] that passes a `u64` through unchanged.
#[derive(Debug, Default)]
pub(super) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Which rows repeat an earlier subscribed row's address; built by [`survey`], consulted
/// while streaming the same file again.
///
/// Memory: 24 bytes per duplicate row, nothing for the others.
#[derive(Debug, Clone, Default)]
pub struct Duplicates {
    /// Sorted by line.
    pub(super) repeats: Vec<Repeat>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Repeat {
    pub(super) line: u64,
    pub(super) first_line: u64,
    /// Part of the address's hash, so that a row is skipped only for its own address.
    pub(super) check: u64,
}

impl Duplicates {
    /// Some(first_line) if this row repeats the address of an earlier subscribed row
    /// (by [`Subscriber::key`]): the row is then not mailed.
    pub fn earlier(&self, s: &Subscriber) -> Option<u64> {
        let index = self
            .repeats
            .binary_search_by_key(&s.line, |r| r.line)
            .ok()?;
        let repeat = self.repeats[index];
        (KeyHash::of(&s.key).0 == repeat.check).then_some(repeat.first_line)
    }

    /// How many rows repeat an earlier one ([`Survey::duplicates`]).
    pub fn count(&self) -> u64 {
        self.repeats.len() as u64
    }
}
