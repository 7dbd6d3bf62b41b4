"""The Python side of the ingest benchmark: the same conversion as the `ingest-deap`
stage — every sNN.dat of a DEAP folder -> recordings.parquet (one row per subject, trial,
channel; samples as list<float32>) + labels.parquet — with pickle.load and pyarrow, using
the Parquet settings of stages/src/data/recordings_writer.rs: zstd level 3, row groups of
at most 400 rows (a DEAP subject: 4 x 400), and for the samples column byte-stream-split
encoding, zstd level 1, no dictionary, no statistics, 256 KiB data pages. With
`--plain`, the settings the stage used before: pyarrow's defaults for every column but
zstd level 3, row groups of at most 1024 rows. (The stage also hashes every input file
for the table's metadata; this script does not.) Not used by the build or the tests.

    python3 stages/benches/ingest_deap.py [--plain] DEAP_FOLDER OUT_FOLDER

Compare with `stages/examples/ingest_deap.rs` (the numbers are in its doc comment):

    /usr/bin/time -v python3 stages/benches/ingest_deap.py /tmp/deap/data_preprocessed_python /tmp/out-py
"""
import os
import pickle
import re
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CHANNELS = [
    "Fp1", "AF3", "F3", "F7", "FC5", "FC1", "C3", "T7", "CP5", "CP1", "P3", "P7", "PO3", "O1",
    "Oz", "Pz", "Fp2", "AF4", "Fz", "F4", "F8", "FC6", "FC2", "Cz", "C4", "T8", "CP6", "CP2",
    "P4", "P8", "PO4", "O2", "hEOG", "vEOG", "zEMG", "tEMG", "GSR", "Respiration",
    "Plethysmograph", "Temperature",
]
KINDS = ["eeg"] * 32 + ["eog"] * 2 + ["other"] * 6

SCHEMA = pa.schema([
    pa.field("dataset", pa.string(), nullable=False),
    pa.field("subject", pa.uint16(), nullable=False),
    pa.field("trial", pa.uint16(), nullable=False),
    pa.field("channel", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("sample_rate", pa.float32(), nullable=False),
    pa.field("samples", pa.list_(pa.field("item", pa.float32(), nullable=False)), nullable=False),
])


KEYS = ["dataset", "subject", "trial", "channel", "kind", "sample_rate"]
# pyarrow names the list's leaf `element` (arrow-rs: `item`); same column.
SAMPLES = "samples.list.element"


def row_group_rows(plain):
    return 1024 if plain else 400


def writer_options(plain):
    if plain:
        return dict(compression="zstd", compression_level=3)
    return dict(
        compression="zstd",
        compression_level={**{k: 3 for k in KEYS}, SAMPLES: 1},
        use_dictionary=KEYS,
        write_statistics=KEYS,
        use_byte_stream_split=[SAMPLES],
        data_page_size=256 * 1024,
    )


def main(src, out, plain):
    files = sorted(
        (int(m.group(1)), os.path.join(src, f))
        for f in os.listdir(src)
        for m in [re.fullmatch(r"s(\d+)\.dat", f)]
        if m
    )
    if not files:
        sys.exit("no sNN.dat files in " + src)
    os.makedirs(out, exist_ok=True)
    start = time.perf_counter()
    total = 0
    writer = pq.ParquetWriter(
        os.path.join(out, "recordings.parquet"), SCHEMA, **writer_options(plain)
    )
    labels_rows = {k: [] for k in ["subject", "trial", "valence", "arousal", "dominance", "liking"]}
    for subject, path in files:
        total += os.path.getsize(path)
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="latin1")
        data = np.ascontiguousarray(d["data"], dtype=np.float32)
        labels = np.asarray(d["labels"], dtype=np.float32)
        trials, channels, samples = data.shape
        if not np.isfinite(data).all() or not np.isfinite(labels).all():
            sys.exit("%s: non-finite values" % path)
        rows = trials * channels
        values = pa.array(data.reshape(-1), type=pa.float32())
        offsets = pa.array(np.arange(0, rows + 1, dtype=np.int32) * samples)
        lists = pa.ListArray.from_arrays(offsets, values).cast(SCHEMA.field("samples").type)
        batch = pa.record_batch(
            [
                pa.array(["deap"] * rows, pa.string()),
                pa.array(np.full(rows, subject, np.uint16)),
                pa.array(np.repeat(np.arange(1, trials + 1, dtype=np.uint16), channels)),
                pa.array(CHANNELS[:channels] * trials, pa.string()),
                pa.array(KINDS[:channels] * trials, pa.string()),
                pa.array(np.full(rows, 128.0, np.float32)),
                lists,
            ],
            schema=SCHEMA,
        )
        writer.write_batch(batch, row_group_size=row_group_rows(plain))
        labels_rows["subject"] += [subject] * trials
        labels_rows["trial"] += list(range(1, trials + 1))
        for k, name in enumerate(["valence", "arousal", "dominance", "liking"]):
            labels_rows[name] += labels[:, k].tolist()
        del d, data, values, lists, batch
    writer.close()
    table = pa.table({
        "dataset": pa.array(["deap"] * len(labels_rows["subject"])),
        "subject": pa.array(labels_rows["subject"], pa.uint16()),
        "trial": pa.array(labels_rows["trial"], pa.uint16()),
        **{k: pa.array(labels_rows[k], pa.float32()) for k in ["valence", "arousal", "dominance", "liking"]},
    })
    pq.write_table(table, os.path.join(out, "labels.parquet"), compression="zstd", compression_level=3)
    seconds = time.perf_counter() - start
    print("python: %d subjects, %.1f MB in %.2f s: %.1f MB/s" % (len(files), total / 1e6, seconds, total / 1e6 / seconds))


if __name__ == "__main__":
    args = sys.argv[1:]
    plain = "--plain" in args
    args = [a for a in args if a != "--plain"]
    if len(args) != 2:
        sys.exit(__doc__)
    main(args[0], args[1], plain)
