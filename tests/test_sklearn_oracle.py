"""The estimators against scikit-learn's own MLP as an oracle (float64).

With the same ``random_state`` they draw the same initial weights, validation split and
shuffles, so every solver, schedule and stopping rule must give scikit-learn's model: the same
weights, loss curve, iteration count and validation scores, up to rounding. The stochastic
solvers are checked in both engines: the NumPy one and the compiled epochs (numba).
"""

import warnings

import numpy as np
import pytest
from sklearn import neural_network as sk
from sklearn.datasets import make_classification, make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning

from matrixprop import sklearn as mps

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X_CLS, Y_MULTI = make_classification(300, 8, n_informative=5, n_classes=3, random_state=0)
Y_BINARY = (Y_MULTI == 1).astype(int)
X_ML, Y_ML = make_multilabel_classification(250, 8, n_classes=3, random_state=0)
X_REG, Y_REG = make_regression(260, 6, n_targets=1, noise=5.0, random_state=0)
Y_REG = Y_REG / Y_REG.std()
_, Y_REG2 = make_regression(260, 6, n_targets=2, random_state=1)
Y_REG2 = Y_REG2 / Y_REG2.std(axis=0)
SAMPLE_WEIGHT = np.random.default_rng(0).uniform(0.2, 2.0, 300)

BASE = dict(hidden_layer_sizes=(16, 8), random_state=0, max_iter=25)
ENGINES = ("numpy", "compiled")


def with_engine(params: dict, engine: str) -> dict:
    """``params`` with the ``accelerate`` setting that picks ``engine`` (the Poisson loss has no
    compiled form: "auto" runs it in NumPy)."""
    if engine == "numpy":
        return {**params, "accelerate": False}
    return {**params, "accelerate": "auto" if params.get("loss") == "poisson" else True}


def assert_same_model(ours, theirs, *, curve=True, atol=1e-10, curve_rtol=1e-10):
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.n_layers_ == theirs.n_layers_
    assert ours.n_outputs_ == theirs.n_outputs_
    assert ours.out_activation_ == theirs.out_activation_
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_,
                    strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=0, atol=atol)
    if hasattr(theirs, "loss_curve_"):
        assert ours.t_ == theirs.t_
        if curve:
            np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=curve_rtol)
            if theirs.best_loss_ is None:
                assert ours.best_loss_ is None
            else:
                assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=curve_rtol, abs=0)
        if theirs.validation_scores_ is None:
            assert ours.validation_scores_ is None
        else:
            np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)
            assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_,
                                                                rel=1e-10)
    elif curve:
        assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-10)


CLASSIFIER_SETTINGS = {
    "adam": {},
    "sgd": dict(solver="sgd", learning_rate_init=0.05),
    "sgd-plain-momentum": dict(solver="sgd", momentum=0.5, nesterovs_momentum=False),
    "sgd-no-momentum": dict(solver="sgd", momentum=0.0, learning_rate_init=0.1),
    # (rates high enough to saturate probabilities below 1e-16 are avoided: scikit-learn clips
    # them at machine epsilon in the reported loss, matrixprop clamps the logarithm at -100)
    "sgd-invscaling": dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.1),
    "sgd-adaptive": dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.05,
                         tol=0.05, n_iter_no_change=1),
    "lbfgs": dict(solver="lbfgs"),
    "early-stopping": dict(early_stopping=True, validation_fraction=0.2, n_iter_no_change=3,
                           max_iter=60),
    "small-batches-no-shuffle": dict(batch_size=32, shuffle=False),
    "logistic": dict(activation="logistic", alpha=0.1),
    "tanh-one-layer": dict(activation="tanh", hidden_layer_sizes=(12,)),
    "identity-no-hidden": dict(activation="identity", hidden_layer_sizes=()),
    "converges": dict(tol=1e-2, max_iter=200),
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("target", ["multiclass", "binary", "multilabel"])
@pytest.mark.parametrize("setting", CLASSIFIER_SETTINGS)
def test_classifier_matches_sklearn(setting, target, engine):
    X, y = {"multiclass": (X_CLS, Y_MULTI), "binary": (X_CLS, Y_BINARY),
            "multilabel": (X_ML, Y_ML)}[target]
    params = {**BASE, **CLASSIFIER_SETTINGS[setting]}
    theirs = sk.MLPClassifier(**params).fit(X, y)
    ours = mps.MLPClassifier(**with_engine(params, engine)).fit(X, y)
    # ours is the exact loss, from the logits; scikit-learn clips probabilities to
    # [eps, 1 - eps], which caps the terms of saturated outputs (the unscaled multilabel
    # counts saturate some): the same weights, curves apart by up to ~1e-7 relative there
    assert_same_model(ours, theirs, curve_rtol=1e-6 if target == "multilabel" else 1e-10)
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-10)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_adaptive_rate_is_divided_like_sklearn():
    params = {**BASE, **CLASSIFIER_SETTINGS["sgd-adaptive"]}
    theirs = sk.MLPClassifier(**params).fit(X_CLS, Y_MULTI)
    ours = mps.MLPClassifier(**params).fit(X_CLS, Y_MULTI)
    assert theirs._optimizer.learning_rate < params["learning_rate_init"]  # the rule fired
    assert ours._solver.optimizer.current_lr == pytest.approx(theirs._optimizer.learning_rate)


@pytest.mark.parametrize("engine", ENGINES)
def test_sample_weight_matches_sklearn(engine):
    for solver in ("adam", "sgd", "lbfgs"):
        params = {**BASE, "solver": solver, "early_stopping": solver == "adam"}
        theirs = sk.MLPClassifier(**params).fit(X_CLS, Y_MULTI, sample_weight=SAMPLE_WEIGHT)
        ours = mps.MLPClassifier(**with_engine(params, engine)).fit(
            X_CLS, Y_MULTI, sample_weight=SAMPLE_WEIGHT)
        assert_same_model(ours, theirs)


REGRESSOR_SETTINGS = {
    "adam": {},
    "sgd": dict(solver="sgd", learning_rate_init=0.01),
    "lbfgs": dict(solver="lbfgs"),
    "early-stopping": dict(early_stopping=True, n_iter_no_change=2, max_iter=60),
    "poisson": dict(loss="poisson"),
    "poisson-lbfgs": dict(loss="poisson", solver="lbfgs"),
}


# Not ("lbfgs", 2): scikit-learn's L-BFGS sees the loss divided by n_outputs with the gradient
# of the undivided loss, so its line searches differ from ours (which are consistent) by design.
REGRESSOR_CASES = [(setting, n) for setting in REGRESSOR_SETTINGS for n in (1, 2)
                   if (setting, n) != ("lbfgs", 2)]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("setting", "n_targets"), REGRESSOR_CASES)
def test_regressor_matches_sklearn(setting, n_targets, engine):
    params = {**BASE, **REGRESSOR_SETTINGS[setting]}
    y = Y_REG if n_targets == 1 else Y_REG2
    if params.get("loss") == "poisson":
        y = np.exp(y / 2)
    theirs = sk.MLPRegressor(**params).fit(X_REG, y)
    ours = mps.MLPRegressor(**with_engine(params, engine)).fit(X_REG, y)
    # with 2 outputs scikit-learn reports the squared error divided by the number of outputs
    # but trains on its sum's gradient (the weights agree, the reported losses do not)
    assert_same_model(ours, theirs, curve=n_targets == 1 or params.get("loss") == "poisson")
    np.testing.assert_allclose(ours.predict(X_REG), theirs.predict(X_REG), atol=1e-9)


@pytest.mark.parametrize("engine", ENGINES)
def test_partial_fit_and_warm_start_match_sklearn(engine):
    params = dict(BASE, max_iter=5)
    classes = np.unique(Y_MULTI)
    theirs, ours = sk.MLPClassifier(**params), mps.MLPClassifier(**with_engine(params, engine))
    for part in np.array_split(np.arange(300), 3):
        theirs.partial_fit(X_CLS[part], Y_MULTI[part], classes=classes)
        ours.partial_fit(X_CLS[part], Y_MULTI[part], classes=classes)
    assert_same_model(ours, theirs)
    params = dict(BASE, max_iter=5, warm_start=True)
    theirs, ours = sk.MLPRegressor(**params), mps.MLPRegressor(**with_engine(params, engine))
    for _ in range(2):
        theirs.fit(X_REG, Y_REG)
        ours.fit(X_REG, Y_REG)
    assert_same_model(ours, theirs)


def test_float32_stays_float32_and_tracks_sklearn():
    X = X_CLS.astype(np.float32)
    theirs = sk.MLPClassifier(**BASE).fit(X, Y_MULTI)
    ours = mps.MLPClassifier(**BASE).fit(X, Y_MULTI)
    assert ours.network_.dtype == np.float32
    assert all(c.dtype == np.float32 for c in ours.coefs_ + ours.intercepts_)
    assert ours.predict_proba(X).dtype == np.float32
    assert_same_model(ours, theirs, curve=False, atol=2e-5)


def test_warnings_match_sklearn():
    for cls_ours, cls_theirs in ((mps.MLPClassifier, sk.MLPClassifier),):
        for params in (dict(max_iter=2), dict(solver="lbfgs", max_iter=2)):
            with warnings.catch_warnings(record=True) as caught_theirs:
                warnings.simplefilter("always")
                cls_theirs(**BASE | params).fit(X_CLS, Y_MULTI)
            with pytest.warns(ConvergenceWarning) as caught_ours:
                cls_ours(**BASE | params).fit(X_CLS, Y_MULTI)
            assert {w.category for w in caught_theirs} == {w.category for w in caught_ours}
            assert all(w.filename == __file__ for w in caught_ours)  # points at the caller
