//! The archive format of a finished job's history: one zstd frame holding every stored entry
//! (seq + the exact bytes of its `e` field), framed so a reader can check it end to end.
//!
//! ```text
//! blob   = "MNHA" version:u8 zstd(body)
//! body   = job_id_len:u16 job_id count:u64 entry{count} "END!"
//! entry  = seq:u64 len:u32 bytes[len]        (little endian; seqs gapless from 1)
//! ```
//!
//! The bytes are kept exactly as stored (never re-encoded), so a reader decodes them with
//! `decode_stored(job_id, seq, bytes)` like a hot entry and an archive replays identically.
//! Decoding streams: [`ArchiveReader`] inflates entry by entry, so a reader holds the
//! compressed blob and one entry, never the whole inflated history.

use std::io::{Read, Write};

/// Magic at the start of every archive blob.
const MAGIC: &[u8; 4] = b"MNHA";
/// Version of the layout above.
const VERSION: u8 = 1;
/// Marks a complete body: a truncated frame cannot end with it by accident.
const END: &[u8; 4] = b"END!";
/// Largest single entry accepted on read (a corrupt length must not allocate gigabytes).
const MAX_ENTRY_BYTES: u32 = 256 * 1024 * 1024;
/// zstd level: 3 is zstd's default, a good ratio at several hundred MB/s.
const LEVEL: i32 = 3;

pub use crate::store::RawEntry;

/// Why an archive could not be written or read. Every corruption is an error, never a panic.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveFormatError {
    #[error("not a history archive (bad magic or version)")]
    NotAnArchive,
    #[error("history archive is corrupt: {0}")]
    Corrupt(String),
    #[error("history archive is truncated: {0}")]
    Truncated(String),
    #[error("history archive is of job {found}, expected {expected}")]
    WrongJob { expected: String, found: String },
    #[error("cannot write history archive: {0}")]
    Write(String),
}

fn corrupt(what: impl Into<String>) -> ArchiveFormatError {
    ArchiveFormatError::Corrupt(what.into())
}

/// Builds an archive entry by entry (the compressed output grows in memory).
pub struct ArchiveWriter {
    encoder: zstd::stream::write::Encoder<'static, Vec<u8>>,
    count: u64,
    last_seq: u64,
}

impl ArchiveWriter {
    /// Starts the archive of `job_id`, whose history has `count` entries.
    pub fn new(job_id: &str, count: u64) -> Result<ArchiveWriter, ArchiveFormatError> {
        let w = |e: std::io::Error| ArchiveFormatError::Write(e.to_string());
        let id_len = u16::try_from(job_id.len()).map_err(|_| corrupt("job id too long"))?;
        let mut out = Vec::with_capacity(4096);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        let mut encoder = zstd::stream::write::Encoder::new(out, LEVEL).map_err(w)?;
        // The frame checksum catches a flipped bit inside the compressed data on read.
        encoder.include_checksum(true).map_err(w)?;
        encoder.write_all(&id_len.to_le_bytes()).map_err(w)?;
        encoder.write_all(job_id.as_bytes()).map_err(w)?;
        encoder.write_all(&count.to_le_bytes()).map_err(w)?;
        Ok(ArchiveWriter {
            encoder,
            count,
            last_seq: 0,
        })
    }

    /// Appends the next entry; seqs must follow each other from 1.
    pub fn push(&mut self, entry: &RawEntry) -> Result<(), ArchiveFormatError> {
        if entry.seq != self.last_seq + 1 {
            return Err(ArchiveFormatError::Write(format!(
                "seq {} does not follow seq {} (histories are gapless)",
                entry.seq, self.last_seq
            )));
        }
        let len = u32::try_from(entry.bytes.len())
            .ok()
            .filter(|l| *l <= MAX_ENTRY_BYTES)
            .ok_or_else(|| ArchiveFormatError::Write(format!("entry {} too large", entry.seq)))?;
        let w = |e: std::io::Error| ArchiveFormatError::Write(e.to_string());
        self.encoder
            .write_all(&entry.seq.to_le_bytes())
            .map_err(w)?;
        self.encoder.write_all(&len.to_le_bytes()).map_err(w)?;
        self.encoder.write_all(&entry.bytes).map_err(w)?;
        self.last_seq = entry.seq;
        Ok(())
    }

    /// Closes the archive; fails when fewer or more entries came than announced.
    pub fn finish(mut self) -> Result<Vec<u8>, ArchiveFormatError> {
        if self.last_seq != self.count {
            return Err(ArchiveFormatError::Write(format!(
                "announced {} entries, wrote {}",
                self.count, self.last_seq
            )));
        }
        let w = |e: std::io::Error| ArchiveFormatError::Write(e.to_string());
        self.encoder.write_all(END).map_err(w)?;
        self.encoder.finish().map_err(w)
    }
}

/// Reads an archive entry by entry, checking magic, job, gapless seqs, count and end marker.
pub struct ArchiveReader {
    decoder: zstd::stream::read::Decoder<'static, std::io::BufReader<std::io::Cursor<Vec<u8>>>>,
    job_id: String,
    count: u64,
    read: u64,
    done: bool,
}

impl ArchiveReader {
    /// Opens `blob`, checking that it is an archive of `expected_job`.
    pub fn open(blob: Vec<u8>, expected_job: &str) -> Result<ArchiveReader, ArchiveFormatError> {
        if blob.len() < MAGIC.len() + 1 || &blob[..4] != MAGIC || blob[4] != VERSION {
            return Err(ArchiveFormatError::NotAnArchive);
        }
        let mut cursor = std::io::Cursor::new(blob);
        cursor.set_position(5);
        let decoder =
            zstd::stream::read::Decoder::new(cursor).map_err(|e| corrupt(e.to_string()))?;
        let mut reader = ArchiveReader {
            decoder,
            job_id: String::new(),
            count: 0,
            read: 0,
            done: false,
        };
        let id_len = u16::from_le_bytes(reader.array("job id length")?);
        let mut id = vec![0u8; usize::from(id_len)];
        reader.fill(&mut id, "job id")?;
        reader.job_id = String::from_utf8(id).map_err(|_| corrupt("job id is not UTF-8"))?;
        if reader.job_id != expected_job {
            return Err(ArchiveFormatError::WrongJob {
                expected: expected_job.to_string(),
                found: reader.job_id,
            });
        }
        reader.count = u64::from_le_bytes(reader.array("entry count")?);
        Ok(reader)
    }

    /// Entries the archive holds (its last seq, since seqs run from 1).
    pub fn count(&self) -> u64 {
        self.count
    }

    fn fill(&mut self, buf: &mut [u8], what: &str) -> Result<(), ArchiveFormatError> {
        self.decoder.read_exact(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                ArchiveFormatError::Truncated(format!("ends inside {what}"))
            }
            _ => corrupt(format!("{what}: {e}")),
        })
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], ArchiveFormatError> {
        let mut buf = [0u8; N];
        self.fill(&mut buf, what)?;
        Ok(buf)
    }

    /// The next entry, `Ok(None)` after the last one (whose end marker is then checked).
    pub fn next_entry(&mut self) -> Result<Option<RawEntry>, ArchiveFormatError> {
        if self.done {
            return Ok(None);
        }
        if self.read == self.count {
            self.done = true;
            let end: [u8; 4] = self.array("end marker")?;
            if &end != END {
                return Err(corrupt("missing end marker"));
            }
            let mut rest = [0u8; 1];
            return match self.decoder.read(&mut rest) {
                Ok(0) => Ok(None),
                Ok(_) => Err(corrupt("bytes after the end marker")),
                Err(e) => Err(corrupt(e.to_string())),
            };
        }
        let seq = u64::from_le_bytes(self.array("entry seq")?);
        if seq != self.read + 1 {
            return Err(corrupt(format!(
                "seq {seq} where {} was due",
                self.read + 1
            )));
        }
        let len = u32::from_le_bytes(self.array("entry length")?);
        if len > MAX_ENTRY_BYTES {
            return Err(corrupt(format!("entry {seq} claims {len} bytes")));
        }
        let mut bytes = vec![0u8; len as usize];
        self.fill(&mut bytes, "entry bytes")?;
        self.read = seq;
        Ok(Some(RawEntry { seq, bytes }))
    }
}

/// Reads a whole archive (tests and small checks; readers page with [`ArchiveReader`]).
pub fn decode_all(blob: &[u8], job_id: &str) -> Result<Vec<RawEntry>, ArchiveFormatError> {
    let mut reader = ArchiveReader::open(blob.to_vec(), job_id)?;
    let mut out = Vec::new();
    while let Some(e) = reader.next_entry()? {
        out.push(e);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(n: u64) -> Vec<RawEntry> {
        (1..=n)
            .map(|seq| RawEntry {
                seq,
                bytes: format!("event number {seq} with some repeated text").into_bytes(),
            })
            .collect()
    }

    fn archive(job: &str, list: &[RawEntry]) -> Vec<u8> {
        let mut w = ArchiveWriter::new(job, list.len() as u64).expect("writer");
        for e in list {
            w.push(e).expect("push");
        }
        w.finish().expect("finish")
    }

    #[test]
    fn round_trips_entries_exactly() {
        let list = entries(1000);
        let blob = archive("job-1", &list);
        assert!(blob.len() < list.iter().map(|e| e.bytes.len()).sum::<usize>() / 4);
        assert_eq!(decode_all(&blob, "job-1").expect("decode"), list);
        let empty = archive("job-2", &[]);
        assert!(decode_all(&empty, "job-2").expect("decode").is_empty());
    }

    #[test]
    fn another_jobs_archive_is_refused() {
        let blob = archive("job-1", &entries(3));
        assert!(matches!(
            decode_all(&blob, "job-9"),
            Err(ArchiveFormatError::WrongJob { .. })
        ));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let blob = archive("job-1", &entries(50));
        for cut in 0..blob.len() {
            assert!(decode_all(&blob[..cut], "job-1").is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn flipped_bytes_are_errors_not_panics() {
        let blob = archive("job-1", &entries(50));
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x5a;
            // The frame checksum and the framing checks (seqs, count, marker) catch most
            // flips, the blob store's digest the rest; what must hold here is that nothing
            // panics and a flip in the header is refused.
            let r = decode_all(&bad, "job-1");
            if i < 5 {
                assert!(
                    matches!(r, Err(ArchiveFormatError::NotAnArchive)),
                    "byte {i}"
                );
            }
        }
    }

    #[test]
    fn writer_refuses_gaps_and_wrong_counts() {
        let mut w = ArchiveWriter::new("j", 2).expect("writer");
        let gap = RawEntry {
            seq: 2,
            bytes: vec![],
        };
        assert!(w.push(&gap).is_err());
        let w = ArchiveWriter::new("j", 2).expect("writer");
        assert!(w.finish().is_err());
    }

    #[test]
    fn garbage_is_not_an_archive() {
        assert!(matches!(
            decode_all(b"", "j"),
            Err(ArchiveFormatError::NotAnArchive)
        ));
        assert!(decode_all(b"MNHA\x01garbage garbage", "j").is_err());
    }
}
