"""Do cffnn's estimators reach scikit-learn's MLP test scores at the same settings?

On scikit-learn's digits, iris, wine and breast-cancer data (MLPClassifier, accuracy)
and diabetes (MLPRegressor, R^2): one fixed split (train_test_split, random_state=0,
stratified for classification), features standardised on the training part (y as is),
float64 data. For each seed, scikit-learn's and cffnn's estimator are fitted with
identical parameters (random_state=seed; cffnn with its default n_threads) and scored
on the test part. Prints one markdown table: mean +- std of the test score of each
library over the seeds, whether |mean difference| <= max(std_sklearn, std_cffnn), the
median fit time of each library, and the ratio sklearn / cffnn (> 1: cffnn faster).

Run from the repository root (under a minute with the default five seeds):
    python benchmarks/quality.py [--seeds N] [--blas-threads N]

--blas-threads caps the BLAS/OpenMP threads of the scikit-learn fits (threadpoolctl);
by default both libraries use their defaults. On a loaded 2-core machine, scikit-learn's
small-matrix fits (digits) can be an order of magnitude slower with 2 OpenBLAS threads
than with 1, which then dominates the time ratio.
"""
import argparse
import time
import warnings

import numpy as np
from sklearn import datasets
from sklearn import neural_network as sk
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import cffnn

# One setting per task, the same for both libraries. Every parameter not named is the
# shared default (activation="relu", alpha=1e-4, batch_size="auto", tol=1e-4, ...).
# Adam at lr 0.01 (as for diabetes) stops on tol within 200 epochs on digits, wine and
# breast cancer; at the default lr 0.001, iris is still under-trained after 200 epochs
# and its scores then depend on the initialisation (He-uniform in cffnn, Glorot in
# scikit-learn) more than on the library.
CLASSIFY = dict(hidden_layer_sizes=(64,), solver="adam", learning_rate_init=0.01,
                max_iter=200)
# Diabetes (331 training rows) overfits with a (64,) net long before 1000 Adam epochs
# at lr 0.01 (test R^2 ~0.2); early stopping on a 10 % validation split ends the fit.
REGRESS = dict(hidden_layer_sizes=(64,), solver="adam", learning_rate_init=0.01,
               max_iter=1000, early_stopping=True)

TASKS = [  # (name, loader, regression?, parameters)
    ("digits", datasets.load_digits, False, CLASSIFY),
    ("iris", datasets.load_iris, False, CLASSIFY),
    ("wine", datasets.load_wine, False, CLASSIFY),
    ("breast_cancer", datasets.load_breast_cancer, False, CLASSIFY),
    ("diabetes", datasets.load_diabetes, True, REGRESS),
]


def load(loader, regression):
    X, y = loader(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, random_state=0, stratify=None if regression else y)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def run(estimator_class, params, seeds, data):
    """(test scores, fit seconds, n_iter_) over the seeds."""
    X_train, X_test, y_train, y_test = data
    scores, times, iters = [], [], []
    for seed in range(seeds):
        model = estimator_class(random_state=seed, **params)
        start = time.perf_counter()
        model.fit(X_train, y_train)
        times.append(time.perf_counter() - start)
        scores.append(model.score(X_test, y_test))
        iters.append(model.n_iter_)
    return np.array(scores), np.array(times), np.array(iters)


def describe(params):
    return ", ".join(f"{k}={v}" for k, v in params.items())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="cap scikit-learn's BLAS threads (default: no cap)")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)

    rows = []
    for name, loader, regression, params in TASKS:
        data = load(loader, regression)
        kind = "MLPRegressor" if regression else "MLPClassifier"
        with threadpool_limits(args.blas_threads):
            sk_scores, sk_times, sk_iters = run(getattr(sk, kind), params, args.seeds, data)
        cf_scores, cf_times, cf_iters = run(getattr(cffnn, kind), params, args.seeds, data)
        diff = abs(sk_scores.mean() - cf_scores.mean())
        within = diff <= max(sk_scores.std(), cf_scores.std()) + 1e-12
        sk_t, cf_t = np.median(sk_times), np.median(cf_times)
        rows.append([
            name, f"{len(data[0])}/{len(data[1])}", "R^2" if regression else "accuracy",
            f"{sk_scores.mean():.4f} ± {sk_scores.std():.4f}",
            f"{cf_scores.mean():.4f} ± {cf_scores.std():.4f}",
            f"{diff:.4f}", "yes" if within else "no",
            f"{sk_iters.mean():.0f} / {cf_iters.mean():.0f}",
            f"{sk_t:.3f}", f"{cf_t:.3f}", f"{sk_t / cf_t:.1f}x"])
        print(f"  {name} done", flush=True)

    header = ["data", "train/test", "score", "sklearn mean ± std", "cffnn mean ± std",
              "abs diff", "within 1 std", "epochs sk / cffnn", "sklearn fit s (median)",
              "cffnn fit s (median)", "ratio sk/cffnn"]
    print()
    print(f"Test scores over seeds 0..{args.seeds - 1} (std: population std over the "
          f"seeds), same parameters for both libraries, float64 data; scikit-learn's "
          f"BLAS threads: {args.blas_threads or 'default'}, cffnn n_threads: default.")
    print(f"- classification (MLPClassifier): {describe(CLASSIFY)}")
    print(f"- regression (MLPRegressor): {describe(REGRESS)}")
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
