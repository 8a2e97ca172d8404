//! Sorting more fixed-size records than memory should hold: records are gathered in a
//! chunk of fixed capacity; a full chunk is sorted and spilled to an anonymous temporary
//! file (a "run"); at the end the runs are merged, a few at a time, into one sorted
//! stream.
//!
//! Memory is the chunk plus the merge buffers, whatever the number of records; disk is
//! [`Record::SIZE`] bytes per record, freed when the stream is dropped.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

/// Runs merged at once; more runs are first merged into longer ones, so the open
/// files and the buffers stay bounded.
const FAN_IN: usize = 64;
/// Read buffers of one merge, shared among its runs, in bytes.
const MERGE_BUFFERS: usize = 1024 * 1024;
/// Write buffer of a run being spilled, in bytes.
const WRITE_BUFFER: usize = 64 * 1024;

/// A value the sorter can write to disk and read back: always [`Record::SIZE`] bytes.
pub trait Record: Copy + Ord {
    const SIZE: usize;
    /// Writes the record into `out`, which is exactly `SIZE` bytes long.
    fn encode(&self, out: &mut [u8]);
    /// Reads back what [`Record::encode`] wrote.
    fn decode(bytes: &[u8]) -> Self;
}

/// Collects records, then yields them in order with [`ExternalSorter::finish`].
pub struct ExternalSorter<R> {
    chunk: Vec<R>,
    capacity: usize,
    fan_in: usize,
    runs: Vec<Run>,
}

/// A sorted run spilled to disk.
struct Run {
    file: File,
    len: u64,
}

impl<R: Record> ExternalSorter<R> {
    /// A sorter that keeps at most `capacity` records in memory (at least 1).
    pub fn new(capacity: usize) -> Self {
        ExternalSorter {
            chunk: Vec::new(),
            capacity: capacity.max(1),
            fan_in: FAN_IN,
            runs: Vec::new(),
        }
    }

    /// Merges at most this many runs at once (at least 2); for tests.
    #[cfg(test)]
    fn with_fan_in(mut self, fan_in: usize) -> Self {
        self.fan_in = fan_in.max(2);
        self
    }

    pub fn push(&mut self, record: R) -> io::Result<()> {
        if self.chunk.len() == self.capacity {
            self.spill()?;
        }
        self.chunk.push(record);
        Ok(())
    }

    /// How many runs were spilled to disk so far.
    #[cfg(test)]
    fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Sorts the chunk and writes it to a new run.
    fn spill(&mut self) -> io::Result<()> {
        self.chunk.sort_unstable();
        let records = self.chunk.drain(..).map(Ok);
        let run = write_run(records)?;
        self.runs.push(run);
        Ok(())
    }

    /// All the records pushed, smallest first.
    pub fn finish(mut self) -> io::Result<Sorted<R>> {
        if self.runs.is_empty() {
            self.chunk.sort_unstable();
            return Ok(Sorted::Memory(self.chunk.into_iter()));
        }
        if !self.chunk.is_empty() {
            self.spill()?;
        }
        self.chunk = Vec::new();
        let mut runs = std::collections::VecDeque::from(self.runs);
        while runs.len() > self.fan_in {
            let group: Vec<Run> = runs.drain(..self.fan_in).collect();
            let merged = write_run(Merge::<R>::new(group)?)?;
            runs.push_back(merged);
        }
        Ok(Sorted::Merge(Merge::new(runs.into())?))
    }
}

/// Writes records (already in order) to a new anonymous temporary file.
fn write_run<R: Record>(records: impl Iterator<Item = io::Result<R>>) -> io::Result<Run> {
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, tempfile::tempfile()?);
    let mut bytes = vec![0u8; R::SIZE];
    let mut len = 0;
    for record in records {
        record?.encode(&mut bytes);
        out.write_all(&bytes)?;
        len += 1;
    }
    let mut file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(Run { file, len })
}

/// The records of an [`ExternalSorter`], in order.
pub enum Sorted<R> {
    /// Everything fitted in one chunk: nothing touched the disk.
    Memory(std::vec::IntoIter<R>),
    Merge(Merge<R>),
}

impl<R: Record> Iterator for Sorted<R> {
    type Item = io::Result<R>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Sorted::Memory(records) => records.next().map(Ok),
            Sorted::Merge(merge) => merge.next(),
        }
    }
}

/// A k-way merge of sorted runs.
pub struct Merge<R> {
    readers: Vec<RunReader>,
    /// The next record of each run that has one, with the run's index.
    heap: BinaryHeap<Reverse<(R, usize)>>,
    failed: bool,
}

struct RunReader {
    input: BufReader<File>,
    left: u64,
    bytes: Vec<u8>,
}

impl RunReader {
    fn next<R: Record>(&mut self) -> io::Result<Option<R>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.input.read_exact(&mut self.bytes)?;
        self.left -= 1;
        Ok(Some(R::decode(&self.bytes)))
    }
}

impl<R: Record> Merge<R> {
    fn new(runs: Vec<Run>) -> io::Result<Merge<R>> {
        let buffer = (MERGE_BUFFERS / runs.len().max(1)).clamp(4 * 1024, 64 * 1024);
        let mut readers: Vec<RunReader> = runs
            .into_iter()
            .map(|run| RunReader {
                input: BufReader::with_capacity(buffer, run.file),
                left: run.len,
                bytes: vec![0u8; R::SIZE],
            })
            .collect();
        let mut heap = BinaryHeap::with_capacity(readers.len());
        for (index, reader) in readers.iter_mut().enumerate() {
            if let Some(record) = reader.next()? {
                heap.push(Reverse((record, index)));
            }
        }
        Ok(Merge {
            readers,
            heap,
            failed: false,
        })
    }
}

impl<R: Record> Iterator for Merge<R> {
    type Item = io::Result<R>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let Reverse((record, index)) = self.heap.pop()?;
        match self.readers[index].next() {
            Ok(Some(next)) => self.heap.push(Reverse((next, index))),
            Ok(None) => {}
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        }
        Some(Ok(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Record for u64 {
        const SIZE: usize = 8;

        fn encode(&self, out: &mut [u8]) {
            out.copy_from_slice(&self.to_le_bytes());
        }

        fn decode(bytes: &[u8]) -> Self {
            u64::from_le_bytes(bytes.try_into().unwrap())
        }
    }

    /// A reproducible shuffle, with repeats.
    fn values(n: u64) -> Vec<u64> {
        (0..n)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % (n / 2 + 1))
            .collect()
    }

    fn sort(values: &[u64], capacity: usize, fan_in: usize) -> (Vec<u64>, usize) {
        let mut sorter = ExternalSorter::new(capacity).with_fan_in(fan_in);
        for &v in values {
            sorter.push(v).unwrap();
        }
        let runs = sorter.runs();
        let sorted = sorter.finish().unwrap().collect::<io::Result<_>>().unwrap();
        (sorted, runs)
    }

    #[test]
    fn sorts_in_memory_and_across_runs() {
        let input = values(1000);
        let mut expected = input.clone();
        expected.sort_unstable();
        for (capacity, fan_in, runs) in [
            (5000, 64, 0),
            (1000, 64, 0),
            (999, 64, 1),
            (7, 64, 142),
            (7, 3, 142),
            (1, 2, 999),
        ] {
            let (sorted, spilled) = sort(&input, capacity, fan_in);
            assert_eq!(spilled, runs, "capacity {capacity}");
            assert_eq!(sorted, expected, "capacity {capacity}, fan-in {fan_in}");
        }
    }

    #[test]
    fn empty_and_single() {
        assert_eq!(sort(&[], 4, 2).0, Vec::<u64>::new());
        assert_eq!(sort(&[42], 1, 2).0, [42]);
        assert_eq!(sort(&[3, 1], 1, 2).0, [1, 3]);
    }
}
