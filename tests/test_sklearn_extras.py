"""What the estimators add to scikit-learn's MLP, and their errors."""

import numpy as np
import pytest
from sklearn.datasets import load_iris, make_regression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer, StandardScaler

import matrixprop as mp
from matrixprop.sklearn import MLPClassifier, MLPRegressor
from matrixprop.sklearn._network import build_network

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X, y = load_iris(return_X_y=True)
X = StandardScaler().fit_transform(X)
PARAMS = dict(hidden_layer_sizes=(16,), max_iter=30, random_state=0)


def test_dropout_is_reproducible_and_off_at_prediction():
    a = MLPClassifier(**PARAMS, dropout=0.3).fit(X, y)
    b = MLPClassifier(**PARAMS, dropout=0.3).fit(X, y)
    plain = MLPClassifier(**PARAMS).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(a.predict_proba(X), a.predict_proba(X))
    assert not np.allclose(a.predict_proba(X), plain.predict_proba(X))
    assert a.network_.layers[0].dropout == 0.3


def test_per_layer_activations():
    clf = MLPClassifier(hidden_layer_sizes=(8, 6), activation=["tanh", "elu"], max_iter=5,
                        random_state=0).fit(X, y)
    assert [layer.activation.name for layer in clf.network_.layers] == ["tanh", "elu", "softmax"]
    with pytest.raises(ValueError, match="activation lists 1 values for 2 hidden layers"):
        MLPClassifier(hidden_layer_sizes=(8, 6), activation=["tanh"]).fit(X, y)


def test_class_weight_is_a_sample_weight_per_class():
    weights = {0: 1.0, 1: 5.0, 2: 0.5}
    a = MLPClassifier(**PARAMS, class_weight=weights).fit(X, y)
    b = MLPClassifier(**PARAMS).fit(X, y, sample_weight=np.vectorize(weights.get)(y))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    plain = MLPClassifier(**PARAMS).fit(X, y)
    assert a.predict_proba(X)[:, 1].mean() > plain.predict_proba(X)[:, 1].mean()
    with pytest.raises(ValueError, match="balanced"):
        MLPClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])


def test_optimizer_with_per_weight_rates_freezes_a_layer():
    optimizer = mp.optimizers.Adam(lr={"layers.0.weight": 0.0, "default": 0.01})
    clf = MLPClassifier(**PARAMS, optimizer=optimizer)
    start = MLPClassifier(**{**PARAMS, "max_iter": 1}, learning_rate_init=1e-300).fit(X, y)
    clf.fit(X, y)
    np.testing.assert_array_equal(clf.coefs_[0], start.coefs_[0])  # frozen at its start
    assert not np.allclose(clf.coefs_[1], start.coefs_[1])
    assert optimizer._params is None  # the estimator trained a copy: its parameter is unchanged


class Recorder(mp.Callback):
    def __init__(self, stop_after=None):
        self.stop_after = stop_after

    def on_train_begin(self, state):
        self.events, self.losses, self.params = ["begin"], [], []

    def on_batch_end(self, state):
        self.events.append("batch")

    def on_epoch_end(self, state):
        self.events.append("epoch")
        self.losses.append(state.logs["loss"])
        self.params.append(state.network.params.copy())
        if state.epoch + 1 == self.stop_after:
            state.stop_training = True

    def on_train_end(self, state):
        self.events.append("end")


def test_callbacks_see_every_batch_and_epoch_and_can_stop():
    recorder = Recorder()
    clf = MLPClassifier(**PARAMS, batch_size=50, callbacks=[recorder]).fit(X, y)
    assert recorder.events == ["begin"] + ["batch", "batch", "batch", "epoch"] * 30 + ["end"]
    assert recorder.losses == clf.loss_curve_
    stopper = Recorder(stop_after=4)
    assert MLPClassifier(**PARAMS, callbacks=[stopper]).fit(X, y).n_iter_ == 4
    lbfgs = Recorder(stop_after=3)
    assert MLPClassifier(**PARAMS, solver="lbfgs", callbacks=[lbfgs]).fit(X, y).n_iter_ == 3
    assert lbfgs.events == ["begin", "epoch", "epoch", "epoch", "end"]


def test_classifier_takes_other_losses():
    mse = MLPClassifier(**PARAMS, loss="mse").fit(X, y)
    proba = mse.predict_proba(X)
    targets = LabelBinarizer().fit_transform(y)
    assert mse._loss.name == "mse"
    assert mse.loss_curve_[-1] < mse.loss_curve_[0]
    # loss_ is the data loss on the last epoch's batches plus the L2 term; on the final model
    # the mean squared error of the probabilities is of the same size
    assert np.mean((proba - targets) ** 2) == pytest.approx(mse.loss_, rel=0.2)


def test_regressor_squared_error_is_half_sse_per_sample():
    Xr, yr = make_regression(120, 4, noise=1.0, random_state=0)
    yr = yr / yr.std()
    ours = MLPRegressor(**PARAMS).fit(Xr, yr)
    explicit = MLPRegressor(**PARAMS, loss=mp.losses.get("half_sse", reduction="batchmean"))
    np.testing.assert_array_equal(explicit.fit(Xr, yr).predict(Xr), ours.predict(Xr))
    mse = MLPRegressor(**PARAMS, loss="mse", learning_rate_init=0.01).fit(Xr, yr)
    assert mse.score(Xr, yr) > 0.9


def test_validation_loss_curve_is_the_held_out_loss_of_each_epoch():
    recorder = Recorder()
    clf = MLPClassifier(**PARAMS, early_stopping=True, n_iter_no_change=100, callbacks=[recorder])
    clf.fit(X, y)
    assert len(clf.validation_loss_curve_) == clf.n_iter_ == 30
    # the same draws as the estimator: initial weights, then the validation split
    rs = np.random.RandomState(0)
    build_network([4, 16, 3], "relu", "softmax", 0.0, np.float64, rs)
    _, X_val, _, Y_val = train_test_split(X, LabelBinarizer().fit_transform(y), random_state=rs,
                                          test_size=0.1)
    net = clf.network_.copy()
    for params, expected in zip(recorder.params, clf.validation_loss_curve_, strict=True):
        net.params[...] = params
        assert net.loss(X_val, Y_val, "cross_entropy") == pytest.approx(expected, rel=1e-12)
    assert MLPClassifier(**PARAMS).fit(X, y).validation_loss_curve_ is None


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_saturated_logistic_units_train_without_warnings():
    rng = np.random.default_rng(0)
    X_big = rng.normal(size=(100, 3)) * 1000.0
    clf = MLPClassifier((5,), activation="logistic", random_state=0, max_iter=5)
    clf.fit(X_big, (X_big[:, 0] > 0).astype(int))
    assert np.isfinite(clf.loss_)


def test_coefs_are_views_of_the_network():
    clf = MLPClassifier(**PARAMS).fit(X, y)
    assert clf.coefs_[0].shape == (4, 16) and clf.intercepts_[1].shape == (3,)
    np.testing.assert_array_equal(clf.coefs_[1], clf.network_.layers[1].W.T)
    clf.coefs_[1][...] = 0.0
    clf.intercepts_[1][...] = 0.0
    np.testing.assert_allclose(clf.predict_proba(X), 1 / 3)


def test_verbose_prints_the_epochs(capsys):
    clf = MLPClassifier(**PARAMS, verbose=True, early_stopping=True).fit(X, y)
    out = capsys.readouterr().out
    assert out.count("Iteration") == clf.n_iter_ == out.count("Validation score:")
    assert out.startswith(f"Engine: compiled\nIteration 1, loss = {clf.loss_curve_[0]:.8f}\n")
    assert "for 10 consecutive epochs. Stopping." in out


@pytest.mark.parametrize(("params", "message"), [
    (dict(solver="newton"), "solver must be one of"),
    (dict(alpha=-1.0), "alpha must be a finite number >= 0"),
    (dict(learning_rate_init=0.0), "learning_rate_init must be > 0"),
    (dict(batch_size=0), "batch_size must be >= 1"),
    (dict(momentum=1.5), r"momentum must be in \[0, 1\]"),
    (dict(validation_fraction=1.0), r"validation_fraction must be in \[0, 1\)"),
    (dict(hidden_layer_sizes=(10, 0)), "hidden_layer_sizes must be >= 1"),
    (dict(solver="lbfgs", dropout=0.2), "dropout needs a stochastic solver"),
    (dict(solver="lbfgs", optimizer=mp.optimizers.SGD()), "optimizer is used by the stochastic"),
    (dict(optimizer="adam"), "optimizer must be a matrixprop optimizer"),
    (dict(callbacks=[print]), "callbacks must be a list of matrixprop Callback"),
    (dict(loss="binary_cross_entropy"), "needs a 'sigmoid' output layer"),
    (dict(accelerate="yes"), "accelerate must be True, False or 'auto', got 'yes'"),
    (dict(accelerate=1), "accelerate must be True, False or 'auto', got 1"),
    (dict(accelerate=True, dropout=0.2), "compiled epochs cannot run: dropout"),
])
def test_bad_parameters_are_named(params, message):
    with pytest.raises((ValueError, TypeError), match=message):
        MLPClassifier(**params).fit(X, y)


def test_partial_fit_errors():
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        MLPClassifier().partial_fit(X, y)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    clf = MLPClassifier(**PARAMS).partial_fit(X[y < 2], y[y < 2], classes=[0, 1])
    with pytest.raises(ValueError, match="`y` has classes not in `self.classes_`"):
        clf.partial_fit(X, y)


def test_warm_start_needs_the_same_architecture():
    clf = MLPClassifier(**PARAMS, warm_start=True).fit(X, y)
    clf.set_params(hidden_layer_sizes=(5,))
    with pytest.raises(ValueError, match="fit without warm_start"):
        clf.fit(X, y)


def test_poisson_needs_non_negative_targets():
    with pytest.raises(ValueError, match="loss='poisson' needs targets y >= 0"):
        MLPRegressor(loss="poisson").fit(X, X[:, 0])


def test_poisson_has_no_compiled_form():
    y_counts = np.exp(X[:, 0])
    with pytest.raises(ValueError, match="activation 'exp' has no compiled form"):
        MLPRegressor(**PARAMS, loss="poisson", accelerate=True).fit(X, y_counts)
    assert MLPRegressor(**PARAMS, loss="poisson").fit(X, y_counts).n_iter_ == 30  # auto: NumPy


def test_auto_runs_the_compiled_epochs_when_the_fit_allows(monkeypatch):
    from matrixprop.accelerated import CompiledEngine

    calls = []
    run_epoch = CompiledEngine.run_epoch
    monkeypatch.setattr(CompiledEngine, "run_epoch",
                        lambda self, *a, **k: calls.append(1) or run_epoch(self, *a, **k))
    MLPClassifier(**PARAMS).fit(X, y)
    assert len(calls) == 30
    MLPClassifier(**PARAMS, dropout=0.1).fit(X, y)
    MLPClassifier(**PARAMS, accelerate=False).fit(X, y)
    assert len(calls) == 30


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the NumPy engine overflows on the way
def test_divergence_runs_on_like_sklearn_in_both_engines():
    """scikit-learn trains on through a non-finite loss; so do both engines, epoch for epoch."""
    curves = []
    for accelerate in (False, True):
        reg = MLPRegressor(**{**PARAMS, "max_iter": 6}, solver="sgd", learning_rate_init=50.0,
                           accelerate=accelerate)
        with pytest.raises(ValueError, match="non-finite parameter weights"):
            reg.fit(X, X[:, 0] * 1e3)
        curves.append(reg.loss_curve_)
    assert len(curves[0]) == len(curves[1]) == 6
    assert not np.isfinite(curves[0][-1])
    np.testing.assert_allclose(curves[1], curves[0], rtol=1e-5)


def test_a_summed_loss_reports_the_epochs_sum_in_both_engines():
    """With reduction="sum" an epoch's loss is the sum over all its samples (the article's
    batch loss over the whole set), whichever engine runs it."""
    summed = mp.losses.HalfSSE(reduction="sum")
    target = X[:, 0]
    fits = [MLPRegressor(**PARAMS, loss=summed, batch_size=20, accelerate=a).fit(X, target)
            for a in (False, True)]
    np.testing.assert_allclose(fits[1].loss_curve_, fits[0].loss_curve_, rtol=1e-5)
