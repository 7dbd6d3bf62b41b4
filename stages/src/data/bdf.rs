//! BioSemi BDF files: a reader and its inverse, a writer.
//!
//! Hand-written: no maintained crate reads 24-bit BDF reliably (`edf-rs` 0.2 is young
//! and EDF-first; crates named `bdf` read a font format), and the format is small.
//! BDF is EDF with 24-bit samples:
//!
//! - a 256-byte fixed header: version (`0xFF` + `"BIOSEMI"`), patient, recording,
//!   start date and time, header size, a reserved field (`"24BIT"` in BioSemi
//!   ActiView files, `"BDF+C"`/`"BDF+D"` in BDF+), the number of data records (`-1`
//!   while a recording is still open), the record duration in seconds and the number
//!   of signals `ns`;
//! - `ns` × 256 bytes of signal headers, stored field by field (all labels, then all
//!   transducers ...): label, transducer, physical dimension, physical min/max,
//!   digital min/max, prefiltering, samples per record, reserved;
//! - data records: for each signal in turn its `samples per record` samples, each a
//!   24-bit little-endian two's-complement integer. Signals may have different
//!   sample counts per record, hence different sample rates.
//!
//! Physical value = `physical_min + (digital - digital_min) * (physical_max -
//! physical_min) / (digital_max - digital_min)`. BioSemi's `Status` channel is a raw
//! integer (its physical and digital ranges coincide): the low 16 bits carry the
//! trigger inputs, the high 8 bits system flags; read it with
//! [`BdfReader::read_digital`]. A BDF+ `BDF Annotations` signal holds text, not
//! samples ([`SignalHeader::is_annotation`]).
//!
//! The reader decodes records in chunks and only the signals asked for, so memory is
//! one chunk plus the requested output. Every size in the header is checked against
//! the file's length before anything is allocated, so a corrupt header gives an
//! error naming the file, never a panic or a huge allocation.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::stage::StageError;

/// Bytes per sample in BDF (EDF has 2).
pub(crate) const BYTES_PER_SAMPLE: usize = 3;
/// Smallest and largest 24-bit two's-complement value.
pub(crate) const DIGITAL_MIN_24: i32 = -8_388_608;
pub(crate) const DIGITAL_MAX_24: i32 = 8_388_607;
/// The label of BioSemi's trigger/status channel.
pub(crate) const STATUS_LABEL: &str = "Status";
/// Mask of the trigger inputs in a Status value.
pub(crate) const TRIGGER_MASK: i32 = 0xFFFF;

const FIXED_HEADER: usize = 256;
const SIGNAL_HEADER: usize = 256;
/// The signal count field has 4 ASCII digits.
const MAX_SIGNALS: usize = 9999;
/// Records decoded per read (bounded further by `CHUNK_BYTES`).
const CHUNK_BYTES: usize = 1 << 20;
const VERSION: &[u8; 8] = b"\xffBIOSEMI";

/// Signal header field widths, in file order.
const SIGNAL_FIELDS: [usize; 10] = [16, 80, 8, 8, 8, 8, 8, 80, 8, 32];

/// A malformed or unreadable BDF file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct BdfError {
    pub path: PathBuf,
    pub message: String,
}

impl BdfError {
    fn new(path: &Path, message: impl Into<String>) -> Self {
        BdfError {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

impl From<BdfError> for StageError {
    fn from(e: BdfError) -> Self {
        StageError::BadFile {
            path: e.path,
            message: e.message,
        }
    }
}

/// The header of one signal.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SignalHeader {
    pub label: String,
    pub transducer: String,
    pub physical_dimension: String,
    pub physical_min: f64,
    pub physical_max: f64,
    pub digital_min: i32,
    pub digital_max: i32,
    pub prefiltering: String,
    pub samples_per_record: usize,
    pub reserved: String,
}

impl SignalHeader {
    /// A signal with BioSemi's full 24-bit digital range.
    pub(crate) fn new(
        label: &str,
        dimension: &str,
        physical_min: f64,
        physical_max: f64,
        samples_per_record: usize,
    ) -> Self {
        SignalHeader {
            label: label.into(),
            transducer: String::new(),
            physical_dimension: dimension.into(),
            physical_min,
            physical_max,
            digital_min: DIGITAL_MIN_24,
            digital_max: DIGITAL_MAX_24,
            prefiltering: String::new(),
            samples_per_record,
            reserved: String::new(),
        }
    }

    /// BioSemi's Status channel: raw integers (physical range = digital range).
    pub(crate) fn status(samples_per_record: usize) -> Self {
        let mut h = SignalHeader::new(
            STATUS_LABEL,
            "Boolean",
            f64::from(DIGITAL_MIN_24),
            f64::from(DIGITAL_MAX_24),
            samples_per_record,
        );
        h.transducer = "Triggers and Status".into();
        h.prefiltering = "No filtering".into();
        h
    }

    /// Whether this is an EDF+/BDF+ annotation signal (text, not samples).
    pub(crate) fn is_annotation(&self) -> bool {
        self.label == "BDF Annotations" || self.label == "EDF Annotations"
    }

    /// `physical = gain * digital + offset`.
    pub(crate) fn gain_offset(&self) -> (f64, f64) {
        let gain = (self.physical_max - self.physical_min)
            / (f64::from(self.digital_max) - f64::from(self.digital_min));
        (gain, self.physical_min - gain * f64::from(self.digital_min))
    }

    #[cfg(test)]
    pub(crate) fn to_physical(&self, digital: i32) -> f64 {
        let (gain, offset) = self.gain_offset();
        gain * f64::from(digital) + offset
    }

    /// The nearest digital value, clamped to the digital range (NaN → digital min).
    pub(crate) fn to_digital(&self, physical: f64) -> i32 {
        let (gain, offset) = self.gain_offset();
        let d = ((physical - offset) / gain).round();
        if d.is_nan() {
            return self.digital_min;
        }
        d.clamp(f64::from(self.digital_min), f64::from(self.digital_max)) as i32
    }
}

/// The file-level header.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BdfHeader {
    pub patient: String,
    pub recording: String,
    /// `dd.mm.yy`
    pub start_date: String,
    /// `hh.mm.ss`
    pub start_time: String,
    /// `24BIT` (BioSemi), `BDF+C` / `BDF+D` (BDF+).
    pub reserved: String,
    pub records: usize,
    /// Seconds per data record.
    pub record_duration: f64,
    pub signals: Vec<SignalHeader>,
}

impl BdfHeader {
    /// Samples per second of signal `i`.
    pub(crate) fn sample_rate(&self, i: usize) -> Option<f64> {
        self.signals
            .get(i)
            .map(|s| s.samples_per_record as f64 / self.record_duration)
    }

    #[cfg(test)]
    /// Total samples of signal `i`.
    pub(crate) fn samples(&self, i: usize) -> Option<usize> {
        self.signals
            .get(i)
            .map(|s| s.samples_per_record * self.records)
    }

    /// Index of the signal labelled `label` (exact match after trimming).
    pub(crate) fn signal_index(&self, label: &str) -> Option<usize> {
        self.signals.iter().position(|s| s.label == label)
    }

    /// BDF+ files whose records are not contiguous in time ("BDF+D").
    pub(crate) fn is_discontinuous(&self) -> bool {
        self.reserved.starts_with("BDF+D")
    }

    /// Bytes of one data record.
    fn record_bytes(&self) -> Option<usize> {
        self.signals.iter().try_fold(0usize, |acc, s| {
            acc.checked_add(s.samples_per_record.checked_mul(BYTES_PER_SAMPLE)?)
        })
    }
}

fn latin1(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| b as char)
        .collect::<String>()
        .trim()
        .to_string()
}

fn field_str(path: &Path, what: &str, bytes: &[u8]) -> Result<String, BdfError> {
    let s = latin1(bytes);
    if s.chars().any(|c| c.is_control()) {
        return Err(BdfError::new(
            path,
            format!("header field `{what}` has control characters: {s:?}"),
        ));
    }
    Ok(s)
}

fn field_num<T: std::str::FromStr>(path: &Path, what: &str, bytes: &[u8]) -> Result<T, BdfError> {
    let s = latin1(bytes);
    s.parse::<T>().map_err(|_| {
        BdfError::new(
            path,
            format!("header field `{what}` is not a number: {s:?}"),
        )
    })
}

fn field_f64(path: &Path, what: &str, bytes: &[u8]) -> Result<f64, BdfError> {
    let v: f64 = field_num(path, what, bytes)?;
    if !v.is_finite() {
        return Err(BdfError::new(
            path,
            format!("header field `{what}` is not finite: {v}"),
        ));
    }
    Ok(v)
}

/// Parse the header from its bytes; `file_len` is the length of the whole file.
fn parse_header(
    path: &Path,
    fixed: &[u8; FIXED_HEADER],
    mut read_rest: impl FnMut(usize) -> Result<Vec<u8>, BdfError>,
    file_len: u64,
) -> Result<BdfHeader, BdfError> {
    if &fixed[..8] != VERSION {
        if &fixed[..8] == b"0       " {
            return Err(BdfError::new(path, "this is an EDF file (16-bit samples), not a BDF file (24-bit, version 0xFF \"BIOSEMI\")"));
        }
        return Err(BdfError::new(
            path,
            format!(
                "not a BDF file: it starts with {:?}, a BDF file with 0xFF \"BIOSEMI\"",
                latin1(&fixed[..8])
            ),
        ));
    }
    let ns: usize = field_num(path, "number of signals", &fixed[252..256])?;
    if ns == 0 || ns > MAX_SIGNALS {
        return Err(BdfError::new(
            path,
            format!("header declares {ns} signals (expected 1 to {MAX_SIGNALS})"),
        ));
    }
    let header_bytes: usize = field_num(path, "header size", &fixed[184..192])?;
    let expected_header = FIXED_HEADER + ns * SIGNAL_HEADER;
    if header_bytes != expected_header {
        return Err(BdfError::new(
            path,
            format!("header size field says {header_bytes} bytes, but {ns} signals need {expected_header}"),
        ));
    }
    if (expected_header as u64) > file_len {
        return Err(BdfError::new(
            path,
            format!("file has {file_len} bytes, shorter than its {expected_header}-byte header"),
        ));
    }
    let declared_records: i64 = field_num(path, "number of data records", &fixed[236..244])?;
    let record_duration = field_f64(path, "record duration", &fixed[244..252])?;
    if record_duration <= 0.0 {
        return Err(BdfError::new(
            path,
            format!("record duration is {record_duration} s (must be > 0)"),
        ));
    }
    let rest = read_rest(ns * SIGNAL_HEADER)?;
    if rest.len() != ns * SIGNAL_HEADER {
        return Err(BdfError::new(path, "signal headers are cut short"));
    }
    // Field f of signal i: the fields are stored column by column.
    let field = |f: usize, i: usize| -> &[u8] {
        let before: usize = SIGNAL_FIELDS[..f].iter().sum();
        let width = SIGNAL_FIELDS[f];
        let at = before * ns + i * width;
        &rest[at..at + width]
    };
    let mut signals = Vec::with_capacity(ns);
    for i in 0..ns {
        let c = |f: usize| field(f, i);
        let label = field_str(path, "label", c(0))?;
        let what = |name: &str| format!("{name} of signal {} ({label:?})", i + 1);
        let s = SignalHeader {
            transducer: field_str(path, &what("transducer"), c(1))?,
            physical_dimension: field_str(path, &what("physical dimension"), c(2))?,
            physical_min: field_f64(path, &what("physical minimum"), c(3))?,
            physical_max: field_f64(path, &what("physical maximum"), c(4))?,
            digital_min: field_num(path, &what("digital minimum"), c(5))?,
            digital_max: field_num(path, &what("digital maximum"), c(6))?,
            prefiltering: field_str(path, &what("prefiltering"), c(7))?,
            samples_per_record: field_num(path, &what("samples per record"), c(8))?,
            reserved: field_str(path, &what("reserved"), c(9))?,
            label,
        };
        if s.digital_min >= s.digital_max
            || s.digital_min < DIGITAL_MIN_24
            || s.digital_max > DIGITAL_MAX_24
        {
            return Err(BdfError::new(
                path,
                format!(
                    "signal {} ({:?}): digital range {}..{} is empty or outside 24 bits",
                    i + 1,
                    s.label,
                    s.digital_min,
                    s.digital_max
                ),
            ));
        }
        if s.physical_min == s.physical_max {
            return Err(BdfError::new(
                path,
                format!(
                    "signal {} ({:?}): physical minimum equals maximum ({})",
                    i + 1,
                    s.label,
                    s.physical_min
                ),
            ));
        }
        if s.samples_per_record == 0 {
            return Err(BdfError::new(
                path,
                format!("signal {} ({:?}) has 0 samples per record", i + 1, s.label),
            ));
        }
        signals.push(s);
    }
    let mut header = BdfHeader {
        patient: field_str(path, "patient", &fixed[8..88])?,
        recording: field_str(path, "recording", &fixed[88..168])?,
        start_date: field_str(path, "start date", &fixed[168..176])?,
        start_time: field_str(path, "start time", &fixed[176..184])?,
        reserved: field_str(path, "reserved", &fixed[192..236])?,
        records: 0,
        record_duration,
        signals,
    };
    let record_bytes = header.record_bytes().filter(|&b| b > 0).ok_or_else(|| {
        BdfError::new(
            path,
            "samples per record add up to an impossible record size",
        )
    })?;
    let data_bytes = file_len - expected_header as u64;
    let whole = data_bytes / record_bytes as u64;
    let partial = data_bytes % record_bytes as u64;
    header.records = match declared_records {
        -1 => {
            // A recording that was never closed: the count follows from the length.
            if partial != 0 {
                return Err(BdfError::new(
                    path,
                    format!("last data record is short: {partial} of {record_bytes} bytes (file truncated?)"),
                ));
            }
            usize::try_from(whole).map_err(|_| BdfError::new(path, "too many data records"))?
        }
        n if n < 0 => {
            return Err(BdfError::new(
                path,
                format!("header declares {n} data records"),
            ));
        }
        n => {
            let n = n as u64;
            let expected = n
                .checked_mul(record_bytes as u64)
                .and_then(|b| b.checked_add(expected_header as u64));
            match expected {
                Some(e) if e == file_len => {
                    usize::try_from(n).map_err(|_| BdfError::new(path, "too many data records"))?
                }
                Some(e) if e > file_len => {
                    return Err(BdfError::new(
                        path,
                        format!(
                            "file is truncated: the header declares {n} data records of {record_bytes} bytes \
                             ({e} bytes in all) but the file has {file_len} bytes ({whole} whole records{})",
                            if partial > 0 { format!(" and a short one of {partial} bytes") } else { String::new() }
                        ),
                    ));
                }
                Some(e) => {
                    return Err(BdfError::new(
                        path,
                        format!(
                            "file has {} bytes after the {n} data records the header declares",
                            file_len - e
                        ),
                    ));
                }
                None => {
                    return Err(BdfError::new(
                        path,
                        format!("header declares an impossible {n} data records"),
                    ));
                }
            }
        }
    };
    Ok(header)
}

/// Reads a BDF file. Opening reads and checks the header; data are decoded on demand.
pub(crate) struct BdfReader<R> {
    path: PathBuf,
    inner: R,
    header: BdfHeader,
    header_bytes: u64,
    record_bytes: usize,
    /// Byte offset of each signal inside a record.
    offsets: Vec<usize>,
}

impl BdfReader<BufReader<File>> {
    pub(crate) fn open(path: &Path) -> Result<Self, BdfError> {
        let file =
            File::open(path).map_err(|e| BdfError::new(path, format!("cannot open: {e}")))?;
        BdfReader::new(BufReader::new(file), path)
    }
}

impl<R: Read + Seek> BdfReader<R> {
    /// Read the header of `inner`; `path` names the file in errors.
    pub(crate) fn new(mut inner: R, path: &Path) -> Result<Self, BdfError> {
        let io = |e: std::io::Error| BdfError::new(path, format!("read error: {e}"));
        let file_len = inner.seek(SeekFrom::End(0)).map_err(io)?;
        inner.seek(SeekFrom::Start(0)).map_err(io)?;
        if file_len < FIXED_HEADER as u64 {
            return Err(BdfError::new(
                path,
                format!("file has {file_len} bytes, too short for a BDF header (256)"),
            ));
        }
        let mut fixed = [0u8; FIXED_HEADER];
        inner.read_exact(&mut fixed).map_err(io)?;
        let header = parse_header(
            path,
            &fixed,
            |n| {
                let mut buf = vec![0u8; n];
                inner.read_exact(&mut buf).map_err(io)?;
                Ok(buf)
            },
            file_len,
        )?;
        let record_bytes = header.record_bytes().expect("checked while parsing");
        let mut offsets = Vec::with_capacity(header.signals.len());
        let mut at = 0;
        for s in &header.signals {
            offsets.push(at);
            at += s.samples_per_record * BYTES_PER_SAMPLE;
        }
        let header_bytes = (FIXED_HEADER + header.signals.len() * SIGNAL_HEADER) as u64;
        Ok(BdfReader {
            path: path.to_path_buf(),
            inner,
            header,
            header_bytes,
            record_bytes,
            offsets,
        })
    }

    pub(crate) fn header(&self) -> &BdfHeader {
        &self.header
    }

    fn check_request(&self, signals: &[usize], records: &Range<usize>) -> Result<(), BdfError> {
        if let Some(&bad) = signals.iter().find(|&&s| s >= self.header.signals.len()) {
            return Err(BdfError::new(
                &self.path,
                format!(
                    "signal index {bad} out of range ({} signals)",
                    self.header.signals.len()
                ),
            ));
        }
        if records.start > records.end || records.end > self.header.records {
            return Err(BdfError::new(
                &self.path,
                format!(
                    "records {records:?} out of range ({} records)",
                    self.header.records
                ),
            ));
        }
        Ok(())
    }

    /// Call `visit(signal position in `signals`, samples bytes)` for each requested
    /// signal of each record in `records`, in order.
    fn visit_records(
        &mut self,
        signals: &[usize],
        records: Range<usize>,
        mut visit: impl FnMut(usize, &[u8]),
    ) -> Result<(), BdfError> {
        self.check_request(signals, &records)?;
        let per_chunk = (CHUNK_BYTES / self.record_bytes).max(1);
        let start = self.header_bytes + records.start as u64 * self.record_bytes as u64;
        let path = self.path.clone();
        let io = |e: std::io::Error| BdfError::new(&path, format!("read error: {e}"));
        self.inner.seek(SeekFrom::Start(start)).map_err(io)?;
        let mut buf = vec![0u8; per_chunk.min(records.len()).max(1) * self.record_bytes];
        let mut left = records.len();
        while left > 0 {
            let n = per_chunk.min(left);
            let chunk = &mut buf[..n * self.record_bytes];
            self.inner.read_exact(chunk).map_err(io)?;
            for record in chunk.chunks_exact(self.record_bytes) {
                for (k, &s) in signals.iter().enumerate() {
                    let from = self.offsets[s];
                    let len = self.header.signals[s].samples_per_record * BYTES_PER_SAMPLE;
                    visit(k, &record[from..from + len]);
                }
            }
            left -= n;
        }
        Ok(())
    }

    fn capacity(&self, signal: usize, records: &Range<usize>) -> usize {
        self.header
            .signals
            .get(signal)
            .map_or(0, |s| s.samples_per_record)
            * records.len()
    }

    /// Raw digital values of `signals` over `records` (one vector per signal).
    pub(crate) fn read_digital(
        &mut self,
        signals: &[usize],
        records: Range<usize>,
    ) -> Result<Vec<Vec<i32>>, BdfError> {
        self.check_request(signals, &records)?;
        let mut out: Vec<Vec<i32>> = signals
            .iter()
            .map(|&s| Vec::with_capacity(self.capacity(s, &records)))
            .collect();
        self.visit_records(signals, records, |k, bytes| {
            out[k].extend(bytes.chunks_exact(BYTES_PER_SAMPLE).map(decode24));
        })?;
        Ok(out)
    }

    /// Physical values of `signals` over `records` (one vector per signal).
    pub(crate) fn read_physical(
        &mut self,
        signals: &[usize],
        records: Range<usize>,
    ) -> Result<Vec<Vec<f32>>, BdfError> {
        self.check_request(signals, &records)?;
        let scale: Vec<(f64, f64)> = signals
            .iter()
            .map(|&s| self.header.signals[s].gain_offset())
            .collect();
        let mut out: Vec<Vec<f32>> = signals
            .iter()
            .map(|&s| Vec::with_capacity(self.capacity(s, &records)))
            .collect();
        self.visit_records(signals, records, |k, bytes| {
            let (gain, offset) = scale[k];
            out[k].extend(
                bytes
                    .chunks_exact(BYTES_PER_SAMPLE)
                    .map(|b| (gain * f64::from(decode24(b)) + offset) as f32),
            );
        })?;
        Ok(out)
    }

    /// All records of one signal, physical values.
    #[cfg(test)]
    pub(crate) fn read_signal(&mut self, signal: usize) -> Result<Vec<f32>, BdfError> {
        let records = 0..self.header.records;
        Ok(self
            .read_physical(&[signal], records)?
            .pop()
            .unwrap_or_default())
    }
}

/// A 24-bit little-endian two's-complement sample.
#[inline]
fn decode24(b: &[u8]) -> i32 {
    (i32::from_le_bytes([b[0], b[1], b[2], 0]) << 8) >> 8
}

#[inline]
fn encode24(v: i32) -> [u8; 3] {
    let b = v.to_le_bytes();
    [b[0], b[1], b[2]]
}

/// Format a header field: ASCII, left-aligned, space-padded to `width`.
fn put_field(
    path: &Path,
    out: &mut Vec<u8>,
    what: &str,
    value: &str,
    width: usize,
) -> Result<(), BdfError> {
    if !value.is_ascii() || value.chars().any(|c| c.is_control()) {
        return Err(BdfError::new(
            path,
            format!("header field `{what}` must be printable ASCII: {value:?}"),
        ));
    }
    if value.len() > width {
        return Err(BdfError::new(
            path,
            format!("header field `{what}` {value:?} is longer than {width} characters"),
        ));
    }
    out.extend_from_slice(value.as_bytes());
    out.extend(std::iter::repeat_n(b' ', width - value.len()));
    Ok(())
}

/// A number in at most `width` characters, as precise as fits.
fn fmt_num(path: &Path, what: &str, v: f64, width: usize) -> Result<String, BdfError> {
    let plain = format!("{v}");
    if plain.len() <= width {
        return Ok(plain);
    }
    for decimals in (0..width).rev() {
        let s = format!("{v:.decimals$}");
        if s.len() <= width {
            return Ok(s);
        }
    }
    Err(BdfError::new(
        path,
        format!("header field `{what}` value {v} does not fit in {width} characters"),
    ))
}

/// How to print one signal-header field.
type FieldText<'a> = &'a dyn Fn(&SignalHeader) -> Result<String, BdfError>;

/// The header bytes for `header` with `records` as the record count field.
fn encode_header(path: &Path, h: &BdfHeader, records: i64) -> Result<Vec<u8>, BdfError> {
    let ns = h.signals.len();
    if ns == 0 || ns > MAX_SIGNALS {
        return Err(BdfError::new(
            path,
            format!("cannot write {ns} signals (1 to {MAX_SIGNALS})"),
        ));
    }
    let mut out = Vec::with_capacity(FIXED_HEADER + ns * SIGNAL_HEADER);
    out.extend_from_slice(VERSION);
    put_field(path, &mut out, "patient", &h.patient, 80)?;
    put_field(path, &mut out, "recording", &h.recording, 80)?;
    put_field(path, &mut out, "start date", &h.start_date, 8)?;
    put_field(path, &mut out, "start time", &h.start_time, 8)?;
    put_field(
        path,
        &mut out,
        "header size",
        &(FIXED_HEADER + ns * SIGNAL_HEADER).to_string(),
        8,
    )?;
    put_field(path, &mut out, "reserved", &h.reserved, 44)?;
    put_field(
        path,
        &mut out,
        "number of data records",
        &records.to_string(),
        8,
    )?;
    put_field(
        path,
        &mut out,
        "record duration",
        &fmt_num(path, "record duration", h.record_duration, 8)?,
        8,
    )?;
    put_field(path, &mut out, "number of signals", &ns.to_string(), 4)?;
    let fields: [(&str, usize, FieldText); 10] = [
        ("label", 16, &|s| Ok(s.label.clone())),
        ("transducer", 80, &|s| Ok(s.transducer.clone())),
        ("physical dimension", 8, &|s| {
            Ok(s.physical_dimension.clone())
        }),
        ("physical minimum", 8, &|s| {
            fmt_num(path, "physical minimum", s.physical_min, 8)
        }),
        ("physical maximum", 8, &|s| {
            fmt_num(path, "physical maximum", s.physical_max, 8)
        }),
        ("digital minimum", 8, &|s| Ok(s.digital_min.to_string())),
        ("digital maximum", 8, &|s| Ok(s.digital_max.to_string())),
        ("prefiltering", 80, &|s| Ok(s.prefiltering.clone())),
        ("samples per record", 8, &|s| {
            Ok(s.samples_per_record.to_string())
        }),
        ("reserved", 32, &|s| Ok(s.reserved.clone())),
    ];
    for (what, width, get) in fields {
        for s in &h.signals {
            put_field(path, &mut out, what, &get(s)?, width)?;
        }
    }
    Ok(out)
}

/// Writes a BDF file record by record. The record count is written as `-1` first
/// and patched by [`BdfWriter::finish`], as BioSemi's ActiView does.
pub(crate) struct BdfWriter<W: Write + Seek> {
    path: PathBuf,
    inner: W,
    header: BdfHeader,
    records: usize,
    buf: Vec<u8>,
}

impl BdfWriter<BufWriter<File>> {
    pub(crate) fn create(path: &Path, header: BdfHeader) -> Result<Self, BdfError> {
        let file =
            File::create(path).map_err(|e| BdfError::new(path, format!("cannot create: {e}")))?;
        BdfWriter::new(BufWriter::new(file), path, header)
    }
}

impl<W: Write + Seek> BdfWriter<W> {
    /// Write the header of `header` (its `records` is ignored).
    pub(crate) fn new(mut inner: W, path: &Path, header: BdfHeader) -> Result<Self, BdfError> {
        if !(header.record_duration > 0.0 && header.record_duration.is_finite()) {
            return Err(BdfError::new(
                path,
                format!("record duration {} s must be > 0", header.record_duration),
            ));
        }
        for s in &header.signals {
            if s.digital_min >= s.digital_max
                || s.digital_min < DIGITAL_MIN_24
                || s.digital_max > DIGITAL_MAX_24
                || s.physical_min == s.physical_max
                || s.samples_per_record == 0
            {
                return Err(BdfError::new(
                    path,
                    format!("signal {:?} has an invalid header: {s:?}", s.label),
                ));
            }
        }
        let bytes = encode_header(path, &header, -1)?;
        inner
            .write_all(&bytes)
            .map_err(|e| BdfError::new(path, format!("write error: {e}")))?;
        let record_bytes = header.record_bytes().unwrap_or(0);
        Ok(BdfWriter {
            path: path.to_path_buf(),
            inner,
            header,
            records: 0,
            buf: Vec::with_capacity(record_bytes),
        })
    }

    #[cfg(test)]
    pub(crate) fn header(&self) -> &BdfHeader {
        &self.header
    }

    /// One data record: for each signal, exactly its samples-per-record digital values.
    pub(crate) fn write_record(&mut self, signals: &[&[i32]]) -> Result<(), BdfError> {
        if signals.len() != self.header.signals.len() {
            return Err(BdfError::new(
                &self.path,
                format!(
                    "record has {} signals, header {}",
                    signals.len(),
                    self.header.signals.len()
                ),
            ));
        }
        self.buf.clear();
        for (h, values) in self.header.signals.iter().zip(signals) {
            if values.len() != h.samples_per_record {
                return Err(BdfError::new(
                    &self.path,
                    format!(
                        "signal {:?}: {} samples for a record of {}",
                        h.label,
                        values.len(),
                        h.samples_per_record
                    ),
                ));
            }
            for &v in *values {
                if v < h.digital_min || v > h.digital_max {
                    return Err(BdfError::new(
                        &self.path,
                        format!(
                            "signal {:?}: value {v} outside {}..{}",
                            h.label, h.digital_min, h.digital_max
                        ),
                    ));
                }
                self.buf.extend_from_slice(&encode24(v));
            }
        }
        self.inner
            .write_all(&self.buf)
            .map_err(|e| BdfError::new(&self.path, format!("write error: {e}")))?;
        self.records += 1;
        Ok(())
    }

    /// Patch the record count into the header and flush. Returns the inner writer.
    pub(crate) fn finish(mut self) -> Result<W, BdfError> {
        let path = self.path.clone();
        let io = |e: std::io::Error| BdfError::new(&path, format!("write error: {e}"));
        let count = fmt_num(&self.path, "number of data records", self.records as f64, 8)?;
        let mut field = Vec::with_capacity(8);
        put_field(&self.path, &mut field, "number of data records", &count, 8)?;
        self.inner.seek(SeekFrom::Start(236)).map_err(io)?;
        self.inner.write_all(&field).map_err(io)?;
        self.inner.seek(SeekFrom::End(0)).map_err(io)?;
        self.inner.flush().map_err(io)?;
        Ok(self.inner)
    }
}

/// One signal's samples for [`write_bdf`].
pub(crate) enum SignalData<'a> {
    /// Physical values, converted with the signal's ranges (rounded, clamped).
    Physical(&'a [f32]),
    /// Raw digital values (e.g. Status).
    Digital(&'a [i32]),
}

/// Write a whole BDF file. Every signal must hold a whole number of records, the
/// same number for all signals.
pub(crate) fn write_bdf(
    path: &Path,
    header: BdfHeader,
    data: &[SignalData],
) -> Result<(), BdfError> {
    if data.len() != header.signals.len() {
        return Err(BdfError::new(
            path,
            format!(
                "{} signals of data for {} headers",
                data.len(),
                header.signals.len()
            ),
        ));
    }
    let mut records = None;
    for (h, d) in header.signals.iter().zip(data) {
        let len = match d {
            SignalData::Physical(v) => v.len(),
            SignalData::Digital(v) => v.len(),
        };
        let spr = h.samples_per_record.max(1);
        if len % spr != 0 {
            return Err(BdfError::new(
                path,
                format!(
                    "signal {:?}: {len} samples is not a whole number of {spr}-sample records",
                    h.label
                ),
            ));
        }
        match records {
            None => records = Some(len / spr),
            Some(r) if r != len / spr => {
                return Err(BdfError::new(
                    path,
                    format!(
                        "signal {:?} has {} records, the first signal {r}",
                        h.label,
                        len / spr
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    let signals = header.signals.clone();
    let mut w = BdfWriter::create(path, header)?;
    let mut digital: Vec<Vec<i32>> = signals
        .iter()
        .map(|s| vec![0; s.samples_per_record])
        .collect();
    for r in 0..records.unwrap_or(0) {
        for ((h, d), out) in signals.iter().zip(data).zip(digital.iter_mut()) {
            let range = r * h.samples_per_record..(r + 1) * h.samples_per_record;
            match d {
                SignalData::Physical(v) => {
                    for (o, &x) in out.iter_mut().zip(&v[range]) {
                        *o = h.to_digital(f64::from(x));
                    }
                }
                SignalData::Digital(v) => out.copy_from_slice(&v[range]),
            }
        }
        let refs: Vec<&[i32]> = digital.iter().map(Vec::as_slice).collect();
        w.write_record(&refs)?;
    }
    w.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn small_header(records: usize) -> BdfHeader {
        BdfHeader {
            patient: "X".into(),
            recording: "test".into(),
            start_date: "01.01.12".into(),
            start_time: "10.00.00".into(),
            reserved: "24BIT".into(),
            records,
            record_duration: 1.0,
            signals: vec![
                SignalHeader::new("Fp1", "uV", -262144.0, 262143.0, 8),
                SignalHeader::new("GSR1", "Ohm", 0.0, 1000.0, 2),
                SignalHeader::status(8),
            ],
        }
    }

    /// A small valid BDF in memory: 3 records; Fp1 a ramp, GSR1 a level, Status
    /// with system bits set (negative raw values) and one trigger.
    fn small_file() -> (Vec<u8>, Vec<f32>, Vec<f32>, Vec<i32>) {
        let fp1: Vec<f32> = (0..24).map(|i| i as f32 * 10.5 - 100.0).collect();
        let gsr: Vec<f32> = (0..6).map(|i| 100.0 + i as f32).collect();
        let status: Vec<i32> = (0..24)
            .map(|i| {
                if (5..9).contains(&i) {
                    -0x200000 | 3
                } else {
                    -0x200000
                }
            })
            .collect();
        let mut w = BdfWriter::new(
            Cursor::new(Vec::new()),
            Path::new("mem.bdf"),
            small_header(0),
        )
        .unwrap();
        for r in 0..3 {
            let d0: Vec<i32> = fp1[r * 8..r * 8 + 8]
                .iter()
                .map(|&x| w.header().signals[0].to_digital(x as f64))
                .collect();
            let d1: Vec<i32> = gsr[r * 2..r * 2 + 2]
                .iter()
                .map(|&x| w.header().signals[1].to_digital(x as f64))
                .collect();
            w.write_record(&[&d0, &d1, &status[r * 8..r * 8 + 8]])
                .unwrap();
        }
        (w.finish().unwrap().into_inner(), fp1, gsr, status)
    }

    #[test]
    fn writer_and_reader_round_trip() {
        let (bytes, fp1, gsr, status) = small_file();
        assert_eq!(bytes.len(), 256 + 3 * 256 + 3 * (8 + 2 + 8) * 3);
        let mut r = BdfReader::new(Cursor::new(bytes), Path::new("mem.bdf")).unwrap();
        let h = r.header().clone();
        assert_eq!(h.records, 3);
        assert_eq!(h.reserved, "24BIT");
        assert_eq!(h.signals.len(), 3);
        assert_eq!(h.signals[1].label, "GSR1");
        assert_eq!(h.sample_rate(0), Some(8.0));
        assert_eq!(h.sample_rate(1), Some(2.0));
        assert_eq!(h.signals, small_header(3).signals);
        let got = r.read_physical(&[0, 1], 0..3).unwrap();
        let res0 = h.signals[0].gain_offset().0 as f32;
        for (a, b) in got[0].iter().zip(&fp1) {
            assert!((a - b).abs() <= res0, "{a} vs {b}");
        }
        assert_eq!(got[1].len(), 6);
        for (a, b) in got[1].iter().zip(&gsr) {
            assert!((a - b).abs() < 1e-3, "{a} vs {b}");
        }
        let st = r.read_digital(&[2], 0..3).unwrap();
        assert_eq!(st[0], status);
        assert_eq!(st[0][6] & TRIGGER_MASK, 3);
        assert!(st[0][0] < 0);
        // A sub-range of records, signals in another order.
        let part = r.read_digital(&[2, 0], 1..2).unwrap();
        assert_eq!(part[0], status[8..16]);
        assert_eq!(part[1].len(), 8);
    }

    #[test]
    fn encode_decode_24bit_extremes() {
        for v in [DIGITAL_MIN_24, -1, 0, 1, 0x7FFF, -0x8000, DIGITAL_MAX_24] {
            assert_eq!(decode24(&encode24(v)), v);
        }
        assert_eq!(decode24(&[0xFF, 0xFF, 0xFF]), -1);
        assert_eq!(decode24(&[0x00, 0x00, 0x80]), DIGITAL_MIN_24);
        assert_eq!(decode24(&[0x01, 0x02, 0x03]), 0x030201);
    }

    #[test]
    fn to_digital_rounds_and_clamps() {
        let h = SignalHeader::new("x", "uV", -262144.0, 262143.0, 1);
        assert_eq!(h.to_digital(1e9), DIGITAL_MAX_24);
        assert_eq!(h.to_digital(-1e9), DIGITAL_MIN_24);
        assert_eq!(h.to_digital(f64::NAN), DIGITAL_MIN_24);
        let d = h.to_digital(12.34);
        assert!((h.to_physical(d) - 12.34).abs() <= h.gain_offset().0);
    }

    fn open(bytes: Vec<u8>) -> Result<BdfReader<Cursor<Vec<u8>>>, BdfError> {
        BdfReader::new(Cursor::new(bytes), Path::new("/data/s1/Part_1.bdf"))
    }

    fn err(bytes: Vec<u8>) -> String {
        let e = open(bytes).err().expect("should fail");
        assert_eq!(e.path, Path::new("/data/s1/Part_1.bdf"));
        e.to_string()
    }

    #[test]
    fn truncated_file_is_an_error_naming_the_file() {
        let (mut bytes, ..) = small_file();
        bytes.truncate(bytes.len() - 5);
        let e = err(bytes);
        assert!(
            e.starts_with("/data/s1/Part_1.bdf: file is truncated"),
            "{e}"
        );
        assert!(e.contains("2 whole records and a short one"), "{e}");
    }

    #[test]
    fn unknown_record_count_follows_from_length() {
        let (mut bytes, ..) = small_file();
        bytes[236..244].copy_from_slice(b"-1      ");
        assert_eq!(open(bytes.clone()).unwrap().header().records, 3);
        bytes.pop();
        assert!(err(bytes).contains("last data record is short"));
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let (mut bytes, ..) = small_file();
        bytes.extend_from_slice(&[0; 4]);
        assert!(err(bytes).contains("4 bytes after the 3 data records"));
    }

    #[test]
    fn bad_headers_are_clear_errors() {
        let (bytes, ..) = small_file();
        let mut edf = bytes.clone();
        edf[..8].copy_from_slice(b"0       ");
        assert!(err(edf).contains("EDF file"));
        let mut junk = bytes.clone();
        junk[0] = b'P';
        assert!(err(junk).contains("not a BDF file"));
        let mut ns = bytes.clone();
        ns[252..256].copy_from_slice(b"9999");
        assert!(err(ns).contains("header size field says 1024 bytes, but 9999 signals need"));
        let mut spr = bytes.clone();
        // samples per record of signal 1: after 16+80+8+8+8+8+8+80 bytes per signal
        let at = 256 + 3 * (16 + 80 + 8 * 5 + 80);
        spr[at..at + 8].copy_from_slice(b"99999999");
        assert!(err(spr).contains("file is truncated"));
        let mut nan = bytes.clone();
        nan[244..252].copy_from_slice(b"abc     ");
        assert!(err(nan).contains("record duration"));
        let mut dig = bytes.clone();
        let at = 256 + 3 * (16 + 80 + 8 * 3);
        dig[at..at + 8].copy_from_slice(b"8388607 ");
        assert!(err(dig).contains("digital range"));
        assert!(err(bytes[..100].to_vec()).contains("too short for a BDF header"));
    }

    #[test]
    fn out_of_range_requests_are_errors() {
        let (bytes, ..) = small_file();
        let mut r = open(bytes).unwrap();
        assert!(r.read_digital(&[3], 0..1).is_err());
        assert!(r.read_digital(&[0], 0..4).is_err());
    }

    #[test]
    fn write_bdf_checks_lengths() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bdf");
        let h = small_header(0);
        let a = vec![0.0f32; 16];
        let b = vec![0.0f32; 4];
        let s = vec![0i32; 15];
        let e = write_bdf(
            &p,
            h.clone(),
            &[
                SignalData::Physical(&a),
                SignalData::Physical(&b),
                SignalData::Digital(&s),
            ],
        );
        assert!(e.unwrap_err().to_string().contains("not a whole number"));
        let s = vec![5i32; 16];
        write_bdf(
            &p,
            h,
            &[
                SignalData::Physical(&a),
                SignalData::Physical(&b),
                SignalData::Digital(&s),
            ],
        )
        .unwrap();
        let mut r = BdfReader::open(&p).unwrap();
        assert_eq!(r.header().records, 2);
        assert_eq!(r.read_digital(&[2], 0..2).unwrap()[0], s);
    }

    #[derive(serde::Deserialize)]
    struct Expected {
        records: usize,
        record_duration: f64,
        signals: Vec<ExpectedSignal>,
    }
    #[derive(serde::Deserialize)]
    struct ExpectedSignal {
        label: String,
        dimension: String,
        sample_rate: f64,
        physical_min: f64,
        physical_max: f64,
        digital_min: i32,
        digital_max: i32,
        samples: usize,
        indices: Vec<usize>,
        digital: Vec<i32>,
        physical: Vec<f64>,
        digital_sum: i64,
        physical_sum: f64,
    }

    /// A BDF+ file written by third-party software (EDFlib, via pyedflib), checked
    /// against what pyedflib reads from it (make_fixtures.py).
    #[test]
    fn reads_pyedflib_test_generator_like_pyedflib() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mahnob");
        let expected: Expected = serde_json::from_str(
            &std::fs::read_to_string(dir.join("test_generator.expected.json")).unwrap(),
        )
        .unwrap();
        let mut r = BdfReader::open(&dir.join("test_generator.bdf")).unwrap();
        let h = r.header().clone();
        assert_eq!(h.reserved, "BDF+C");
        assert!(!h.is_discontinuous());
        assert_eq!(h.records, expected.records);
        assert_eq!(h.record_duration, expected.record_duration);
        // pyedflib hides the annotation signal; it is the last one in the file.
        assert_eq!(h.signals.len(), expected.signals.len() + 1);
        assert!(h.signals.last().unwrap().is_annotation());
        for (i, want) in expected.signals.iter().enumerate() {
            let s = &h.signals[i];
            assert_eq!(s.label, want.label);
            assert_eq!(s.physical_dimension, want.dimension);
            assert_eq!(h.sample_rate(i), Some(want.sample_rate));
            assert_eq!(s.physical_min, want.physical_min);
            assert_eq!(s.physical_max, want.physical_max);
            assert_eq!(s.digital_min, want.digital_min);
            assert_eq!(s.digital_max, want.digital_max);
            assert_eq!(h.samples(i), Some(want.samples));
            let digital = r.read_digital(&[i], 0..h.records).unwrap().pop().unwrap();
            let physical = r.read_signal(i).unwrap();
            assert_eq!(digital.len(), want.samples);
            assert_eq!(physical.len(), want.samples);
            for (k, &j) in want.indices.iter().enumerate() {
                assert_eq!(digital[j], want.digital[k], "{} digital[{j}]", want.label);
                let tol = 1e-6 * want.physical[k].abs().max(1.0);
                assert!(
                    (f64::from(physical[j]) - want.physical[k]).abs() <= tol.max(1e-3),
                    "{} physical[{j}]: {} vs {}",
                    want.label,
                    physical[j],
                    want.physical[k]
                );
            }
            let dsum: i64 = digital.iter().map(|&d| i64::from(d)).sum();
            assert_eq!(dsum, want.digital_sum, "{}", want.label);
            let psum: f64 = physical.iter().map(|&p| f64::from(p)).sum();
            assert!(
                (psum - want.physical_sum).abs() < 1e-3 * want.samples as f64,
                "{}",
                want.label
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        #[test]
        fn random_mutations_never_panic(
            edits in proptest::collection::vec((0usize..2000, proptest::prelude::any::<u8>()), 1..12),
            cut in proptest::option::of(0usize..2000),
        ) {
            let (mut bytes, ..) = small_file();
            for (at, v) in edits {
                let n = bytes.len();
                bytes[at % n] = v;
            }
            if let Some(c) = cut {
                let n = bytes.len();
                bytes.truncate(c % (n + 1));
            }
            if let Ok(mut r) = open(bytes) {
                let n = r.header().signals.len();
                let records = r.header().records;
                let all: Vec<usize> = (0..n).collect();
                let _ = r.read_physical(&all, 0..records);
                let _ = r.read_digital(&all, 0..records);
            }
        }
    }
}
