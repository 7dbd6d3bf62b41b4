"""Reference numbers for the unit tests of stages/src/stats.

Run: python3 stages/src/stats/reference.py   (scipy 1.17.1, statsmodels 0.15.0,
scikit-learn 1.9.1, numpy 2.4.6). Each printed line is `expression = value`;
the tests copy the expression as a comment next to the value.
"""
import numpy as np, scipy, scipy.stats as st, statsmodels, sklearn
from scipy.stats import wilcoxon, ttest_rel, t, nct, hypergeom
from scipy.optimize import brentq
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, roc_auc_score
from sklearn.dummy import DummyClassifier

print("# versions", scipy.__version__, statsmodels.__version__, sklearn.__version__, np.__version__)

def show(expr):
    v = eval(expr, globals())
    if isinstance(v, (tuple, list, np.ndarray)):
        v = [float(x) for x in np.ravel(np.asarray(v, dtype=float))]
        print(f"{expr} = [{', '.join(repr(x) for x in v)}]")
    else:
        print(f"{expr} = {float(v)!r}")

def nb(d, r):
    d = np.asarray(d, float); J = len(d)
    se = np.sqrt((1 / J + r) * d.var(ddof=1)); tt = d.mean() / se
    q = t.ppf(0.975, J - 1)
    return tt, 2 * t.sf(abs(tt), J - 1), d.mean() - q * se, d.mean() + q * se

def mdd_exact(n, alpha=0.05, power=0.8):
    # smallest noncentrality with two-sided power == power (scipy nct), in sd units * sqrt(n)
    df = n - 1; c = t.isf(alpha / 2, df)
    # nct.cdf(-c) is ~1e-10 or smaller here; scipy returns NaN for some tiny values
    f = lambda nc: nct.sf(c, df, nc) + np.nan_to_num(nct.cdf(-c, df, nc)) - power
    return brentq(f, 0, 200, xtol=1e-14, rtol=1e-14)

def ci(x):
    x = np.asarray(x, float)
    return t.interval(0.95, len(x) - 1, loc=x.mean(), scale=st.sem(x))

S1 = [1.0, 2.0, 2.0, 3.0, 7.0]
S2 = [0.6812, 0.7134, 0.6655, 0.7021, 0.6930, 0.7248, 0.6779, 0.7093]
A1 = [0.70, 0.72, 0.68, 0.75, 0.71]; B1 = [0.70, 0.69, 0.66, 0.71, 0.73]
A2 = [0.8123, 0.7951, 0.8342, 0.8017, 0.7788, 0.8230, 0.8105, 0.7899, 0.8264, 0.8011]
B2 = [0.7944, 0.7990, 0.8101, 0.7823, 0.7801, 0.8012, 0.7956, 0.7910, 0.8015, 0.7888]
D1 = [0.02, -0.01, 0.03, 0.01, 0.0, 0.02, 0.04, -0.02, 0.01, 0.03]
rng = np.random.default_rng(20240607)
D2 = np.round(rng.normal(0.012, 0.02, 30), 6).tolist()
print("D2 =", D2)
W_EXACT = [0.31, -1.42, 2.05, 0.77, -0.18, 1.26, 0.94, -0.55, 1.73, 0.08]
W_TIES = [0.0, 1.0, 2.0, -2.0, 0.0, 3.0, -1.0, 4.0, 5.0, 3.0]
W_TIES20 = [1.0, 2.0, 2.0, -3.0, 4.0, 5.0, -6.0, 7.0, 8.0, 9.0, 10.0, 10.0, -11.0, 12.0, 13.0, 0.0, 14.0, 15.0, 16.0, -2.0]
W_BIG = np.round(rng.normal(0.3, 1.0, 60), 6).tolist()
print("W_BIG =", W_BIG)
W_40 = np.round(rng.normal(0.2, 1.0, 40), 6).tolist()
print("W_40 =", W_40)
P1 = [0.01, 0.04, 0.03, 0.005]
P2 = [0.2, 0.01, 0.04, 0.04, 0.5, 0.001, 0.3]
Y3 = [0, 1, 2, 2, 1, 0, 0, 2, 1, 1, 0, 2]; P3 = [0, 2, 2, 1, 1, 0, 1, 2, 1, 0, 0, 0]
YB = [0, 0, 1, 1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 1]; SB = [0.1, 0.4, 0.35, 0.8, 0.4, 0.4, 0.9, 0.2, 0.35, 0.55, 0.1, 0.7, 0.65, 0.4]
YB2 = rng.integers(0, 2, 50).tolist(); SB2 = np.round(rng.uniform(0, 1, 50) + 0.3 * np.asarray(YB2), 3).tolist()
print("YB2 =", YB2); print("SB2 =", SB2)
TR = [0, 1, 1, 2, 2, 2, 1, 0]; TE = [2, 1, 0, 2, 2, 1]
TR2 = [3, 1, 1, 3, 0]; TE2 = [1, 3, 3, 3, 0, 1, 1]
Q = [0.3, -0.1, 0.25, 0.0, 0.12, 0.4, -0.2]

exprs = [
 "ci(S1)", "np.std(S1, ddof=1)", "st.sem(S1)", "ci(S2)", "np.mean(S2)", "np.std(S2, ddof=1)",
 "ttest_rel(A1, B1).statistic", "ttest_rel(A1, B1).pvalue", "ttest_rel(A1, B1).confidence_interval(0.95)",
 "ttest_rel(A2, B2).statistic", "ttest_rel(A2, B2).pvalue", "ttest_rel(A2, B2).confidence_interval(0.95)",
 "nb(D1, 1/9)", "nb(D2, 0.25)",
 "wilcoxon(W_EXACT)", "wilcoxon(W_TIES)", "wilcoxon(W_TIES20)", "wilcoxon(W_BIG)", "wilcoxon(W_40)",
 "multipletests([0.01, 0.04, 0.03, 0.005], method='holm')[1]",
 "multipletests([0.2, 0.01, 0.04, 0.04, 0.5, 0.001, 0.3], method='holm')[1]",
 "wilcoxon([0, 0, 0])", "wilcoxon([0.0] * 20)", "wilcoxon([1.0])", "wilcoxon([1, -2])",
 "hypergeom.sf(6 - 1, 14, 8, 9)", "t.interval(0.95, 4, loc=np.mean(S1), scale=st.sem(S1))",
 "TTestPower().solve_power(effect_size=None, nobs=5, alpha=0.05, power=0.8)",
 "TTestPower().solve_power(effect_size=None, nobs=10, alpha=0.05, power=0.8)",
 "TTestPower().solve_power(effect_size=None, nobs=30, alpha=0.05, power=0.8)",
 "mdd_exact(5) / np.sqrt(5)", "mdd_exact(10) / np.sqrt(10)", "mdd_exact(30) / np.sqrt(30)",
 "mdd_exact(10) * 0.02 * np.sqrt(1/10 + 1/9)", "mdd_exact(12, alpha=0.01, power=0.9) * 0.05 / np.sqrt(12)",
 "(t.ppf(0.975, 4) + t.ppf(0.8, 4)) / (mdd_exact(5)) - 1",
 "(t.ppf(0.975, 9) + t.ppf(0.8, 9)) / (mdd_exact(10)) - 1",
 "(t.ppf(0.975, 29) + t.ppf(0.8, 29)) / (mdd_exact(30)) - 1",
 "mdd_exact(2, alpha=0.01, power=0.9) / np.sqrt(2)", "nct.cdf(63.66, 1, 104.7)", "nct.cdf(10, 30, 12)",
 "nct.cdf(2.1, 7, 1.3)", "nct.cdf(-0.7, 3, 0.4)", "nct.cdf(1.5, 25, -0.8)", "nct.cdf(4.0, 12, 3.5)",
 "accuracy_score(Y3, P3)", "balanced_accuracy_score(Y3, P3)", "f1_score(Y3, P3, average='macro')",
 "accuracy_score(YB, SB_pred)", "balanced_accuracy_score(YB, SB_pred)", "f1_score(YB, SB_pred, average='macro')",
 "roc_auc_score(YB, SB)", "roc_auc_score(YB2, SB2)",
 "DummyClassifier(strategy='most_frequent').fit(np.zeros((len(TR), 1)), TR).score(np.zeros((len(TE), 1)), TE)",
 "DummyClassifier(strategy='most_frequent').fit(np.zeros((len(TR2), 1)), TR2).score(np.zeros((len(TE2), 1)), TE2)",
 "f1_score(YB, np.ones_like(YB))", "f1_score(YB2, np.ones_like(YB2))",
 "np.percentile(Q, [2.5, 97.5])", "np.percentile(Q, [0, 50, 100])",
]
SB_pred = [int(s >= 0.4) for s in SB]
print("SB_pred =", SB_pred)
for e in exprs:
    show(e)
