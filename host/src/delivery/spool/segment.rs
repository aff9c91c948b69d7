//! Segment files: their names (`<id>.seg`, 20 decimal digits, ids only ever
//! grow), how they are opened, and reading a segment back frame by frame,
//! resynchronising past damage so that one flipped byte costs one record,
//! not the rest of the file. (Writing them is the spool thread's, `io`.)

use std::fs::OpenOptions;

use super::frame::{self, Bad, FRAME_OVERHEAD, Frame, HEADER_LEN, MAX_BODY};

/// Suffix of segment files.
pub const SUFFIX: &str = ".seg";
/// Suffix given to segments that could not be read at all (kept for inspection).
pub const QUARANTINE_SUFFIX: &str = ".corrupt";

/// The file name of segment `id`.
pub fn file_name(id: u64) -> String {
    format!("{id:020}{SUFFIX}")
}

/// The id of a segment file name, if `name` is one.
pub fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Open options for spool files: owner-only permissions on Unix (the
/// spool holds log messages).
pub fn options() -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    o
}

/// A damaged region found while reading a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    /// Byte offset where the region starts.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
    /// True when the region runs to the end of the file (a torn or corrupt tail).
    pub at_end: bool,
    /// What was wrong with the first frame of the region.
    pub why: Bad,
}

/// What reading one segment found.
#[derive(Debug, Default)]
pub struct Scan {
    /// False when the header is missing or not this format: nothing else was read.
    pub header_ok: bool,
    /// The frames that read back intact, in file order (the KEY frame first).
    pub frames: Vec<Frame>,
    /// Damaged regions, in file order.
    pub damage: Vec<Damage>,
}

/// Reads a whole segment image.
pub fn scan(bytes: &[u8]) -> Scan {
    let mut scan = Scan::default();
    if !frame::is_header(bytes) {
        return scan;
    }
    scan.header_ok = true;
    let mut at = HEADER_LEN;
    while at < bytes.len() {
        match frame::decode(&bytes[at..]) {
            Ok((f, n)) => {
                scan.frames.push(f);
                at += n;
            }
            Err(why) => {
                let next = resync(bytes, at + 1);
                let end = next.unwrap_or(bytes.len());
                scan.damage.push(Damage {
                    offset: at as u64,
                    len: (end - at) as u64,
                    at_end: next.is_none(),
                    why,
                });
                at = end;
            }
        }
    }
    scan
}

/// The offset of the next intact frame at or after `from`, if any. A random
/// byte run passes the length check, the checksum and the body parse with a
/// probability far below one in four billion, so a match is a real frame.
fn resync(bytes: &[u8], from: usize) -> Option<usize> {
    let last = bytes.len().checked_sub(FRAME_OVERHEAD + 1)?;
    (from..=last).find(|&p| {
        let len = u32::from_le_bytes(bytes[p..p + 4].try_into().expect("4 bytes")) as usize;
        len != 0 && len <= MAX_BODY && p + FRAME_OVERHEAD + len <= bytes.len() && {
            frame::decode(&bytes[p..]).is_ok()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::spool::frame::{EventRef, encode_event, encode_key};
    use crate::event::PayloadKind;

    fn image(n: u64) -> Vec<u8> {
        let mut out = frame::header().to_vec();
        encode_key(
            &mut out,
            PayloadKind::JsonLog,
            &[("stream".into(), "s".into())],
        );
        for seq in 0..n {
            encode_event(
                &mut out,
                EventRef {
                    seq,
                    timestamp_ms: 1_000 + seq as i64,
                    job: "job",
                    message: &format!("{{\"n\":{seq},\"pad\":\"xxxxxxxxxxxxxxxx\"}}"),
                },
            );
        }
        out
    }

    fn seqs(scan: &Scan) -> Vec<u64> {
        scan.frames
            .iter()
            .filter_map(|f| match f {
                Frame::Event { seq, .. } => Some(*seq),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn names() {
        assert_eq!(file_name(42), "00000000000000000042.seg");
        assert_eq!(parse_name("00000000000000000042.seg"), Some(42));
        assert_eq!(parse_name("42.seg"), None);
        assert_eq!(parse_name("0000000000000000004x.seg"), None);
        assert_eq!(parse_name("00000000000000000042.seg.corrupt"), None);
    }

    #[test]
    fn intact_segment_reads_back() {
        let s = scan(&image(10));
        assert!(s.header_ok);
        assert!(s.damage.is_empty());
        assert_eq!(seqs(&s), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn flipped_byte_costs_one_record() {
        let img = image(10);
        let clean = scan(&img);
        // Flip a byte in the middle of the fifth event's message.
        let mut at = HEADER_LEN;
        let mut starts = Vec::new();
        while at < img.len() {
            starts.push(at);
            at += frame::decode(&img[at..]).expect("frame").1;
        }
        let mut bad = img.clone();
        bad[starts[5] + 30] ^= 0x20;
        let s = scan(&bad);
        assert_eq!(s.damage.len(), 1, "{:?}", s.damage);
        assert!(!s.damage[0].at_end);
        assert_eq!(s.damage[0].why, Bad::Checksum);
        assert_eq!(seqs(&s), [0, 1, 2, 3, 5, 6, 7, 8, 9]);
        assert_eq!(clean.frames.len(), s.frames.len() + 1);
    }

    #[test]
    fn torn_tail_is_detected_at_every_cut() {
        let img = image(3);
        let full = scan(&img).frames.len();
        for cut in HEADER_LEN..img.len() {
            let s = scan(&img[..cut]);
            let whole = s.frames.len();
            assert!(whole < full || cut == img.len());
            match s.damage.as_slice() {
                [] => assert!(
                    {
                        // A cut exactly between frames leaves no damage.
                        let mut at = HEADER_LEN;
                        while at < cut {
                            at += frame::decode(&img[at..]).expect("frame").1;
                        }
                        at == cut
                    },
                    "cut at {cut} without damage"
                ),
                [d] => {
                    assert!(d.at_end, "cut at {cut}: {d:?}");
                    assert_eq!(d.offset + d.len, cut as u64);
                }
                more => panic!("cut at {cut}: {more:?}"),
            }
        }
    }

    #[test]
    fn foreign_bytes_have_no_header() {
        assert!(!scan(b"hello, I am not a segment").header_ok);
        assert!(!scan(b"").header_ok);
    }
}
