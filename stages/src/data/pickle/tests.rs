//! The reader against files written by real Python 2 cPickle and Python 3 pickle
//! (`stages/tests/fixtures/deap`, made by `make_fixtures.py`), the writer byte for byte
//! against cPickle, and hostile input.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::writer::{write_py2_dict, F64Array};
use super::*;

pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/deap")
}

/// The fixture script's data formula, in float64.
pub(crate) fn fixture_value(t: usize, c: usize, s: usize) -> f64 {
    ((t * 7919 + c * 104729 + s * 31) % 2001) as f64 - 1000.0
}

pub(crate) fn fixture_data(shape: [usize; 3]) -> Vec<f64> {
    let mut v = Vec::with_capacity(shape.iter().product());
    for t in 0..shape[0] {
        for c in 0..shape[1] {
            for s in 0..shape[2] {
                v.push(fixture_value(t, c, s) / 7.0);
            }
        }
    }
    v
}

pub(crate) fn fixture_labels(trials: usize) -> Vec<f64> {
    (0..trials * 4)
        .map(|i| 1.0 + ((i * 37) % 81) as f64 / 10.0)
        .collect()
}

fn as_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

fn load_bytes(bytes: &[u8]) -> Result<PickleDict<Cursor<&[u8]>>, PickleError> {
    load_dict(Cursor::new(bytes))
}

#[derive(serde::Deserialize)]
struct Manifest {
    fixtures: Vec<Fixture>,
}

#[derive(serde::Deserialize)]
struct Fixture {
    file: String,
    shape: [usize; 3],
    dtype: String,
    fortran: bool,
}

#[test]
fn reads_every_python_fixture_to_the_written_values() {
    let text = std::fs::read_to_string(fixtures().join("fixtures.json")).unwrap();
    let manifest: Manifest = serde_json::from_str(&text).unwrap();
    let mut checked = 0;
    for f in manifest
        .fixtures
        .iter()
        .filter(|f| f.file.ends_with(".dat"))
    {
        let file = std::fs::File::open(fixtures().join(&f.file)).unwrap();
        let mut dict = load_dict(file).unwrap_or_else(|e| panic!("{}: {e}", f.file));
        let mut keys = dict.keys();
        keys.sort();
        assert_eq!(keys, ["data", "labels"], "{}", f.file);
        let Some(Entry::Array(a)) = dict.get("data") else {
            panic!("{}: data", f.file)
        };
        assert_eq!(a.shape, f.shape, "{}", f.file);
        assert_eq!(a.element.name(), f.dtype, "{}", f.file);
        assert_eq!(a.fortran, f.fortran, "{}", f.file);
        let data = dict.read_f32("data").unwrap();
        assert_eq!(data, as_f32(&fixture_data(f.shape)), "{}", f.file);
        let labels = dict.read_f32("labels").unwrap();
        assert_eq!(labels, as_f32(&fixture_labels(f.shape[0])), "{}", f.file);
        checked += 1;
    }
    assert_eq!(checked, 18);
}

#[test]
fn python2_dict_order_is_labels_then_data() {
    let file = std::fs::File::open(fixtures().join("py2_cpickle_p2.dat")).unwrap();
    assert_eq!(load_dict(file).unwrap().keys(), ["labels", "data"]);
}

fn written(shape: [usize; 3]) -> Vec<u8> {
    let (data, labels) = (fixture_data(shape), fixture_labels(shape[0]));
    let mut out = Vec::new();
    write_py2_dict(
        &mut out,
        &[
            (
                "labels",
                F64Array {
                    shape: &[shape[0], 4],
                    values: &labels,
                },
            ),
            (
                "data",
                F64Array {
                    shape: &shape,
                    values: &data,
                },
            ),
        ],
    )
    .unwrap();
    out
}

#[test]
fn writer_matches_python2_cpickle_byte_for_byte() {
    // 300 samples: BINSTRING data and a BININT2 dimension; 40×16: SHORT_BINSTRING-free path.
    for (file, shape) in [
        ("py2_cpickle_p2.dat", [2, 3, 300]),
        ("folder_py2/s01.dat", [2, 40, 16]),
    ] {
        let python = std::fs::read(fixtures().join(file)).unwrap();
        let ours = written(shape);
        if ours != python {
            let at = ours
                .iter()
                .zip(&python)
                .position(|(a, b)| a != b)
                .unwrap_or(ours.len().min(python.len()));
            panic!(
                "{file}: first difference at byte {at} (ours {} bytes, cPickle {})",
                ours.len(),
                python.len()
            );
        }
    }
}

#[test]
fn a_deap_size_file_has_deap_size() {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len() as u64;
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let (data, labels) = (vec![0.0; 40 * 40 * 8064], vec![1.0; 160]);
    let mut count = Count(0);
    write_py2_dict(
        &mut count,
        &[
            (
                "labels",
                F64Array {
                    shape: &[40, 4],
                    values: &labels,
                },
            ),
            (
                "data",
                F64Array {
                    shape: &[40, 40, 8064],
                    values: &data,
                },
            ),
        ],
    )
    .unwrap();
    assert_eq!(
        count.0, 103_220_672,
        "docs/data.md: a DEAP subject file is 103,220,672 bytes"
    );
}

#[test]
fn writer_output_reads_back() {
    // 96 kB of data: kept as a span of the input while parsing, converted afterwards.
    let bytes = written([3, 40, 100]);
    let mut dict = load_bytes(&bytes).unwrap();
    assert_eq!(
        dict.read_f32("data").unwrap(),
        as_f32(&fixture_data([3, 40, 100]))
    );
    assert_eq!(dict.read_f32("labels").unwrap(), as_f32(&fixture_labels(3)));
    for cut in (0..bytes.len()).step_by(997) {
        assert!(
            load_bytes(&bytes[..cut]).is_err(),
            "cut at {cut} was accepted"
        );
    }
}

fn error_of(bytes: &[u8]) -> String {
    match load_bytes(bytes) {
        Ok(_) => panic!("accepted {bytes:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn refuses_globals_outside_the_allowlist() {
    let cases: [&[u8]; 5] = [
        b"cos\nsystem\n(S'echo hi'\ntR.",
        b"\x80\x02cbuiltins\neval\nX\x01\x00\x001\x85R.",
        b"\x80\x04\x8c\x08builtins\x8c\x04exec\x93\x8c\x011\x85R.",
        b"c__builtin__\nopen\n(S'/etc/passwd'\ntR.",
        b"}(S'data'\ncsubprocess\ncall\n)Ru.",
    ];
    for case in cases {
        let e = error_of(case);
        assert!(e.contains("refusing the global"), "{e}");
        assert!(e.contains("Nothing was executed"), "{e}");
    }
    assert!(error_of(b"cos\nsystem\n(S'x'\ntR.").contains("`os.system`"));
    for op in [
        &b"(ios\nsystem\nS'x'\n."[..],
        b"\x80\x02)\x81.",
        b"\x80\x02\x82\x01.",
    ] {
        let e = error_of(op);
        assert!(e.contains("refused") || e.contains("arbitrary"), "{e}");
    }
    assert!(error_of(b"P1\n.").contains("persistent"));
}

#[test]
fn reports_structural_errors() {
    assert!(error_of(b"\x80\x06}.").contains("protocol 6"));
    assert!(error_of(b"]q\x00.").contains("expected a dict"));
    assert!(error_of(b"h\x09.").contains("memo key 9"));
    assert!(error_of(b"t.").contains("MARK"));
    assert!(error_of(b".").contains("stack underflow"));
    assert!(error_of(b"\x80\x05\x97.").contains("out-of-band"));
    assert!(error_of(b"\xff").contains("unknown opcode"));
    assert!(error_of(b"").contains("truncated"));
    // A huge declared length is a truncation, not an allocation.
    assert!(error_of(b"\x80\x04\x8e\x00\x00\x00\x00\x00\x00\x00\x10.").contains("truncated"));
    assert!(error_of(b"T\xff\xff\xff\xff.").contains("negative"));
}

#[test]
fn deep_nesting_neither_recurses_nor_overflows() {
    let mut bytes = b"\x80\x02)".to_vec();
    bytes.extend(std::iter::repeat_n(0x85u8, 200_000));
    bytes.push(b'.');
    assert!(error_of(&bytes).contains("tuple, expected a dict"));
}

fn replace_once(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern present");
    let mut out = bytes[..at].to_vec();
    out.extend_from_slice(to);
    out.extend_from_slice(&bytes[at + from.len()..]);
    out
}

#[test]
fn rejects_wrong_dtypes_and_sizes() {
    let good = written([2, 3, 5]);
    // An int64 array parses but is refused as data.
    let ints = replace_once(&good, b"U\x02f8", b"U\x02i8");
    let mut dict = load_bytes(&ints).unwrap();
    let e = dict.read_f32("labels").unwrap_err().to_string();
    assert!(
        e.contains("dtype i8") && e.contains("float64 and float32"),
        "{e}"
    );
    // A shape that does not match the bytes.
    let wrong = replace_once(&good, b"K\x02K\x03K\x05\x87", b"K\x02K\x03K\x06\x87");
    let e = error_of(&wrong);
    assert!(
        e.contains("has 240 bytes but shape [2, 3, 6] of <f8 needs 288"),
        "{e}"
    );
    // A list where the data should be.
    let e = error_of(b"\x80\x02}(U\x04datacnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R(K\x01K\x01\x85cnumpy\ndtype\nU\x02f8K\x00K\x01\x87R\x89]tbu.");
    assert!(e.contains("object arrays"), "{e}");
    // Non-array values are reported by type.
    let mut dict = load_bytes(b"}(U\x04dataK\x01U\x06labels]u.").unwrap();
    assert!(dict
        .read_f32("data")
        .unwrap_err()
        .to_string()
        .contains("`data` is a int"));
    assert!(dict
        .read_f32("labels")
        .unwrap_err()
        .to_string()
        .contains("list"));
    assert!(dict
        .read_f32("nope")
        .unwrap_err()
        .to_string()
        .contains("no key"));
}

#[test]
fn every_truncation_is_an_error() {
    for file in [
        "py2_cpickle_p0.dat",
        "py2_cpickle_p1.dat",
        "py3_np2_p4.dat",
        "py3_np2_p5.dat",
        "py3_np2_p2.dat",
    ] {
        let bytes = std::fs::read(fixtures().join(file)).unwrap();
        for cut in 0..bytes.len() {
            assert!(
                load_bytes(&bytes[..cut]).is_err(),
                "{file} cut at {cut} was accepted"
            );
        }
    }
    // Large arrays stay in the file as spans: a cut inside one is caught while parsing.
    let mut big = std::fs::read(fixtures().join("py2_cpickle_p2.dat")).unwrap();
    big.truncate(big.len() - 100);
    let e = error_of(&big);
    assert!(e.contains("BINSTRING") && e.contains("truncated"), "{e}");
}

/// Parses and converts everything, discarding errors: must never panic.
fn exercise(bytes: &[u8]) {
    if let Ok(mut dict) = load_bytes(bytes) {
        let keys: Vec<String> = dict.keys().iter().map(|k| k.to_string()).collect();
        for k in keys {
            let _ = dict.read_f32(&k);
        }
    }
}

fn fixture_bytes() -> Vec<Vec<u8>> {
    [
        "py2_cpickle_p0.dat",
        "py2_cpickle_p1.dat",
        "py2_cpickle_p2_f4be_fortran.dat",
        "py3_np2_p2.dat",
        "py3_np2_p4.dat",
        "py3_np2_p5_f4be_fortran.dat",
    ]
    .iter()
    .map(|f| std::fs::read(fixtures().join(f)).unwrap())
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn mutated_fixtures_never_panic(
        which in 0usize..6,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut bytes = fixture_bytes().swap_remove(which);
        for (at, byte, kind) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match kind {
                0 => bytes[i] = byte,
                1 => { bytes.remove(i); }
                _ => bytes.insert(i, byte),
            }
        }
        exercise(&bytes);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        exercise(&bytes);
    }
}
