"""scikit-learn's own conformance suite on the matrixprop estimators."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

import matrixprop as mp
from matrixprop.sklearn import MLPClassifier, MLPRegressor


def expected_failures(estimator) -> dict[str, str]:
    """At the checks' sizes (< 200 samples) batch_size="auto" is the whole training set, so
    weighting a sample by k and repeating it k times give the same gradients and the default
    estimators pass the sample-weight equivalence check; two options break it by design."""
    reasons = {}
    if estimator.dropout:
        reasons["check_sample_weight_equivalence_on_dense_data"] = (
            "dropout masks are drawn per row: k repeated rows get k masks, a weighted row one")
    if estimator.solver == "sgd" and estimator.learning_rate == "invscaling":
        reasons["check_sample_weight_equivalence_on_dense_data"] = (
            "the invscaling rate decays with the number of samples seen, which repeating "
            "samples increases")
    return reasons


ESTIMATORS = [
    MLPClassifier(max_iter=100),
    MLPClassifier(solver="sgd", max_iter=50, learning_rate="adaptive"),
    MLPClassifier(solver="lbfgs", max_iter=50),
    MLPClassifier(hidden_layer_sizes=(8, 8), activation=["tanh", "gelu"], dropout=0.1,
                  optimizer=mp.optimizers.AdamW(lr=1e-2), max_iter=30),
    MLPRegressor(max_iter=100),
    MLPRegressor(solver="sgd", max_iter=100, learning_rate="invscaling", learning_rate_init=0.05),
    MLPRegressor(solver="lbfgs", max_iter=50),
    MLPRegressor(loss="poisson", learning_rate_init=0.01, max_iter=100),
    MLPRegressor(hidden_layer_sizes=(20,), loss="mse", dropout=0.1, learning_rate_init=0.01,
                 max_iter=100),
]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failures)
def test_sklearn_conformance(estimator, check):
    check(estimator)
