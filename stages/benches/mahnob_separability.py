#!/usr/bin/env python3
"""How much of the labels the synthetic MAHNOB windows carry, by modality: a
band-power + logistic-regression baseline (not the paper's model), evaluated on
the `folds` stage's splits (train+val fit, test scored).

    cargo build --workspace --examples
    target/debug/examples/mahnob_pipeline /tmp/mp
    python3 stages/benches/mahnob_separability.py /tmp/mp

Needs numpy, pyarrow, scikit-learn. Prints accuracy (mean ± sd over folds) for
EEG+EOG features and for EOG-only features, per target.
"""
import json
import sys

import numpy as np
import pyarrow.parquet as pq
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

BANDS = [(1, 4), (4, 8), (8, 13), (13, 30), (30, 45)]


def features(data, channels, fs):
    spec = np.abs(np.fft.rfft(data * np.hanning(data.shape[-1]), axis=-1)) ** 2
    freqs = np.fft.rfftfreq(data.shape[-1], 1 / fs)
    out = [np.log(spec[..., (freqs >= lo) & (freqs < hi)].mean(-1) + 1e-12) for lo, hi in BANDS]
    # time-domain shape for the EOG events (blinks, saccades)
    out.append(np.log(data.std(-1) + 1e-12))
    out.append(np.abs(np.diff(data, axis=-1)).max(-1))
    return np.concatenate(out, axis=-1)


def main(root):
    path = f"{root}/windows/windows.parquet"
    wt = pq.read_table(path)
    md = {k.decode(): v.decode() for k, v in pq.ParquetFile(path).metadata.metadata.items()}
    channels = json.loads(md["channels"])
    kinds = json.loads(md["kinds"])
    t, fs = int(md["samples"]), float(md["sample_rate"])
    data = np.stack(wt.column("data").to_numpy(zero_copy_only=False)).reshape(len(wt), len(channels), t)
    subject = wt.column("subject").to_numpy()
    trial = wt.column("trial").to_numpy()
    sp = pq.read_table(f"{root}/splits/splits.parquet").to_pandas()
    eog = [i for i, k in enumerate(kinds) if k == "eog"]
    sets = {"EEG+EOG": list(range(len(channels))), "EOG only": eog}
    feats = {name: features(data[:, idx, :], [channels[i] for i in idx], fs) for name, idx in sets.items()}
    for target in ["arousal", "valence"]:
        y = wt.column(target).to_numpy()
        print(f"{target}: high fraction {y.mean():.3f}")
        for name, x in feats.items():
            accs = []
            for fold in sorted(sp.fold.unique()):
                f = sp[sp.fold == fold]
                test = set(zip(f[f.role == "test"].subject, f[f.role == "test"].trial))
                is_test = np.array([(s, tr) in test for s, tr in zip(subject, trial)])
                sc = StandardScaler().fit(x[~is_test])
                clf = LogisticRegression(C=0.1, max_iter=2000).fit(sc.transform(x[~is_test]), y[~is_test])
                accs.append((clf.predict(sc.transform(x[is_test])) == y[is_test]).mean())
            print(f"  {name:9s} accuracy {100 * np.mean(accs):.1f} ± {100 * np.std(accs):.1f} %  ({len(accs)} folds)")


if __name__ == "__main__":
    main(sys.argv[1])
