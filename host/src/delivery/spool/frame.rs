//! The on-disk record format of the spool: a segment file header and
//! checksummed frames.
//!
//! ```text
//! segment = header frame*
//! header  = "CWPUBSP1" (8 bytes) | version u32 LE (= 1) | reserved u32 (= 0)
//! frame   = len u32 LE | crc u32 LE | body (len bytes)
//! crc     = CRC-32C (Castagnoli) over len (4 bytes LE) ‖ body
//! body    = tag u8 | fields (integers little-endian, strings UTF-8)
//!   6 KEY      kind u8 | n u8 | n × (name_len u16 | name | value_len u16 | value)
//!   2 EVENT    seq u64 | timestamp_ms i64 | job_len u16 | job | message (the rest)
//!   3 ACK      lo u64 | hi u64    every event of this stream with lo ≤ seq ≤ hi is resolved
//!   4 SENDING  lo u64 | hi u64    a request with events in [lo, hi] went out
//!   5 REFUSED  lo u64 | hi u64    that request was refused: none of it was accepted
//!   1 KEY (0.1) kind u8 | group_len u16 | group | stream_len u16 | stream
//! ```
//!
//! The KEY frame names the stream by its target's labels (a CloudWatch
//! target's `log_group` and `log_stream`; nothing for a DataDog target). The
//! older KEY frame (tag 1), written by cwpub 0.1, named a CloudWatch log group
//! and stream; it is still read, as those two labels.
//!
//! CRC-32C is chosen on purpose (hardware-accelerated on x86-64 and ARMv8,
//! the polynomial iSCSI and ext4 use); the test below pins the polynomial.
//! The length is covered by the checksum, so a corrupted length is caught
//! like a corrupted body.

use crate::event::PayloadKind;

/// The first eight bytes of every segment file.
pub const MAGIC: &[u8; 8] = b"CWPUBSP1";
/// Format version written after the magic.
pub const VERSION: u32 = 1;
/// Size of the segment header (magic, version, reserved).
pub const HEADER_LEN: usize = 16;
/// Size of a frame's length and checksum fields.
pub const FRAME_OVERHEAD: usize = 8;
/// Largest body accepted when reading (a maximal event is about 1 MiB).
pub const MAX_BODY: usize = 2 * 1024 * 1024;
/// Longest job name a frame can hold.
pub const MAX_JOB_LEN: usize = u16::MAX as usize;

const TAG_KEY: u8 = 1;
const TAG_EVENT: u8 = 2;
const TAG_ACK: u8 = 3;
const TAG_SENDING: u8 = 4;
const TAG_REFUSED: u8 = 5;
const TAG_KEY_LABELS: u8 = 6;

/// One event as written: borrowed from the caller, never copied twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a> {
    /// Spool sequence number (unique within the spool for the event's life).
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The job that produced it.
    pub job: &'a str,
    /// The message, byte for byte.
    pub message: &'a str,
}

/// A decoded frame body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The stream this segment belongs to.
    Key {
        /// Payload kind of the stream.
        kind: PayloadKind,
        /// The target's labels.
        labels: Vec<(String, String)>,
    },
    /// One buffered event.
    Event {
        /// Sequence number.
        seq: u64,
        /// Milliseconds since the Unix epoch.
        timestamp_ms: i64,
        /// The job that produced it.
        job: String,
        /// The message.
        message: String,
    },
    /// Every event of the stream with `lo ≤ seq ≤ hi` is resolved.
    Ack {
        /// Smallest sequence number resolved.
        lo: u64,
        /// Largest sequence number resolved.
        hi: u64,
    },
    /// A request holding events in `[lo, hi]` was sent (answer unknown yet).
    Sending {
        /// Smallest sequence number in the request.
        lo: u64,
        /// Largest sequence number in the request.
        hi: u64,
    },
    /// The request for `[lo, hi]` was answered with a refusal.
    Refused {
        /// Smallest sequence number in the request.
        lo: u64,
        /// Largest sequence number in the request.
        hi: u64,
    },
}

/// The segment header bytes.
pub fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h
}

/// True when `bytes` starts with a valid segment header of this version.
pub fn is_header(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER_LEN && bytes[..HEADER_LEN] == header()
}

fn kind_code(kind: PayloadKind) -> u8 {
    match kind {
        PayloadKind::JsonLog => 0,
        PayloadKind::Emf => 1,
    }
}

fn kind_of(code: u8) -> Option<PayloadKind> {
    match code {
        0 => Some(PayloadKind::JsonLog),
        1 => Some(PayloadKind::Emf),
        _ => None,
    }
}

/// Bytes an event frame takes on disk.
#[inline]
pub fn event_len(job: &str, message: &str) -> usize {
    FRAME_OVERHEAD + 1 + 8 + 8 + 2 + job.len().min(MAX_JOB_LEN) + message.len()
}

/// Appends one frame whose body is written by `body` to `out`.
fn frame(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_OVERHEAD]);
    body(out);
    let len = (out.len() - start - FRAME_OVERHEAD) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    let crc = crc32c::crc32c_append(
        crc32c::crc32c(&len.to_le_bytes()),
        &out[start + FRAME_OVERHEAD..],
    );
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn put_str16(out: &mut Vec<u8>, s: &str) {
    // Names are at most 512 bytes and job names 64; longer input is cut at a
    // character boundary so the frame always decodes as UTF-8.
    let mut end = s.len().min(MAX_JOB_LEN);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..end]);
}

/// Most labels a KEY frame holds.
pub const MAX_LABELS: usize = u8::MAX as usize;

/// Encodes the KEY frame of a stream (at most [`MAX_LABELS`] labels are kept).
pub fn encode_key(out: &mut Vec<u8>, kind: PayloadKind, labels: &[(String, String)]) {
    frame(out, |b| {
        b.push(TAG_KEY_LABELS);
        b.push(kind_code(kind));
        let labels = &labels[..labels.len().min(MAX_LABELS)];
        b.push(labels.len() as u8);
        for (name, value) in labels {
            put_str16(b, name);
            put_str16(b, value);
        }
    });
}

/// Bytes the KEY frame of a stream takes.
pub fn key_len(labels: &[(String, String)]) -> usize {
    let mut out = Vec::new();
    encode_key(&mut out, PayloadKind::JsonLog, labels);
    out.len()
}

/// The KEY frame cwpub 0.1 wrote (a CloudWatch log group and stream); kept
/// for the tests that read old spools.
#[cfg(test)]
pub fn encode_key_v0_1(out: &mut Vec<u8>, kind: PayloadKind, group: &str, stream: &str) {
    frame(out, |b| {
        b.push(TAG_KEY);
        b.push(kind_code(kind));
        put_str16(b, group);
        put_str16(b, stream);
    });
}

/// Encodes one EVENT frame.
pub fn encode_event(out: &mut Vec<u8>, e: EventRef<'_>) {
    frame(out, |b| {
        b.push(TAG_EVENT);
        b.extend_from_slice(&e.seq.to_le_bytes());
        b.extend_from_slice(&e.timestamp_ms.to_le_bytes());
        put_str16(b, e.job);
        b.extend_from_slice(e.message.as_bytes());
    });
}

/// Encodes an ACK frame.
pub fn encode_ack(out: &mut Vec<u8>, lo: u64, hi: u64) {
    frame(out, |b| {
        b.push(TAG_ACK);
        b.extend_from_slice(&lo.to_le_bytes());
        b.extend_from_slice(&hi.to_le_bytes());
    });
}

/// Encodes a SENDING (`refused = false`) or REFUSED frame.
pub fn encode_range(out: &mut Vec<u8>, refused: bool, lo: u64, hi: u64) {
    frame(out, |b| {
        b.push(if refused { TAG_REFUSED } else { TAG_SENDING });
        b.extend_from_slice(&lo.to_le_bytes());
        b.extend_from_slice(&hi.to_le_bytes());
    });
}

/// Why a frame could not be read at some offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    /// Fewer bytes left than the frame needs (a torn write).
    Short,
    /// The length field is zero or larger than [`MAX_BODY`].
    Length,
    /// The checksum does not match.
    Checksum,
    /// The checksum matches but the body is not a frame this version knows.
    Body,
}

/// Reads the frame at the start of `bytes`: the frame and its total length.
pub fn decode(bytes: &[u8]) -> Result<(Frame, usize), Bad> {
    if bytes.len() < FRAME_OVERHEAD {
        return Err(Bad::Short);
    }
    let len = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes")) as usize;
    if len == 0 || len > MAX_BODY {
        return Err(Bad::Length);
    }
    if bytes.len() < FRAME_OVERHEAD + len {
        return Err(Bad::Short);
    }
    let crc = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    let body = &bytes[FRAME_OVERHEAD..FRAME_OVERHEAD + len];
    if crc32c::crc32c_append(crc32c::crc32c(&bytes[0..4]), body) != crc {
        return Err(Bad::Checksum);
    }
    let frame = parse_body(body).ok_or(Bad::Body)?;
    Ok((frame, FRAME_OVERHEAD + len))
}

/// A little cursor over a frame body.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    fn str16(&mut self) -> Option<String> {
        let n = u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")) as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
    fn done(&self) -> bool {
        self.0.is_empty()
    }
}

fn parse_body(body: &[u8]) -> Option<Frame> {
    let mut c = Cursor(body);
    let frame = match c.u8()? {
        TAG_KEY => Frame::Key {
            kind: kind_of(c.u8()?)?,
            labels: vec![
                ("log_group".to_string(), c.str16()?),
                ("log_stream".to_string(), c.str16()?),
            ],
        },
        TAG_KEY_LABELS => {
            let kind = kind_of(c.u8()?)?;
            let n = c.u8()? as usize;
            let mut labels = Vec::with_capacity(n);
            for _ in 0..n {
                labels.push((c.str16()?, c.str16()?));
            }
            Frame::Key { kind, labels }
        }
        TAG_EVENT => {
            let seq = c.u64()?;
            let timestamp_ms = c.u64()? as i64;
            let job = c.str16()?;
            let message = String::from_utf8(c.0.to_vec()).ok()?;
            c.0 = &[];
            Frame::Event {
                seq,
                timestamp_ms,
                job,
                message,
            }
        }
        TAG_ACK => Frame::Ack {
            lo: c.u64()?,
            hi: c.u64()?,
        },
        TAG_SENDING => Frame::Sending {
            lo: c.u64()?,
            hi: c.u64()?,
        },
        TAG_REFUSED => Frame::Refused {
            lo: c.u64()?,
            hi: c.u64()?,
        },
        _ => return None,
    };
    c.done().then_some(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_is_castagnoli() {
        // The standard check value of CRC-32C ("123456789" → 0xE3069283);
        // CRC-32/IEEE would give 0xCBF43926.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn every_frame_round_trips() {
        let mut out = Vec::new();
        let labels = vec![
            ("log_group".to_string(), "/g".to_string()),
            ("log_stream".to_string(), "s-1".to_string()),
        ];
        encode_key(&mut out, PayloadKind::Emf, &labels);
        encode_key_v0_1(&mut out, PayloadKind::JsonLog, "/g", "s-1");
        encode_key(&mut out, PayloadKind::JsonLog, &[]);
        // frame | tag kind n | (len name len value)×n; the 0.1 frame had no names.
        assert_eq!(key_len(&labels), 8 + 3 + (2 + 9 + 2 + 2) + (2 + 10 + 2 + 3));
        assert_eq!(key_len(&[]), 8 + 3);
        assert_eq!(
            out.len(),
            key_len(&labels) + (8 + 2 + 2 + 2 + 2 + 3) + key_len(&[])
        );
        let before = out.len();
        encode_event(
            &mut out,
            EventRef {
                seq: 7,
                timestamp_ms: -3,
                job: "job",
                message: "héllo",
            },
        );
        assert_eq!(out.len() - before, event_len("job", "héllo"));
        encode_ack(&mut out, 8, 9);
        encode_range(&mut out, false, 1, 2);
        encode_range(&mut out, true, 1, 2);
        let mut frames = Vec::new();
        let mut at = 0;
        while at < out.len() {
            let (f, n) = decode(&out[at..]).expect("valid frame");
            frames.push(f);
            at += n;
        }
        assert_eq!(
            frames,
            vec![
                Frame::Key {
                    kind: PayloadKind::Emf,
                    labels: labels.clone(),
                },
                Frame::Key {
                    kind: PayloadKind::JsonLog,
                    labels,
                },
                Frame::Key {
                    kind: PayloadKind::JsonLog,
                    labels: vec![],
                },
                Frame::Event {
                    seq: 7,
                    timestamp_ms: -3,
                    job: "job".into(),
                    message: "héllo".into()
                },
                Frame::Ack { lo: 8, hi: 9 },
                Frame::Sending { lo: 1, hi: 2 },
                Frame::Refused { lo: 1, hi: 2 },
            ]
        );
    }

    #[test]
    fn any_flipped_bit_is_caught() {
        let mut out = Vec::new();
        encode_event(
            &mut out,
            EventRef {
                seq: 1,
                timestamp_ms: 2,
                job: "j",
                message: "{\"a\":1}",
            },
        );
        for i in 0..out.len() {
            for bit in 0..8 {
                let mut bad = out.clone();
                bad[i] ^= 1 << bit;
                assert!(
                    decode(&bad).is_err(),
                    "flip of bit {bit} in byte {i} went unnoticed"
                );
            }
        }
        for cut in 0..out.len() {
            assert_eq!(decode(&out[..cut]).unwrap_err(), Bad::Short, "cut at {cut}");
        }
    }
}
