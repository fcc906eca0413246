"""The estimators inside scikit-learn's machinery, and saved and loaded with pickle/joblib."""

import io
import pickle

import joblib
import numpy as np
import pytest
from sklearn import neural_network as sk
from sklearn.base import clone
from sklearn.datasets import load_iris, load_wine
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from matrixprop.sklearn import MLPClassifier, MLPRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X, y = load_iris(return_X_y=True)
PARAMS = dict(hidden_layer_sizes=(10,), max_iter=40, random_state=0)


def test_pipeline_trains_and_scores():
    pipe = make_pipeline(StandardScaler(), MLPClassifier(**PARAMS, learning_rate_init=0.05))
    assert pipe.fit(X, y).score(X, y) > 0.9
    assert pipe.predict_proba(X).shape == (150, 3)


def test_cross_val_score_equals_sklearns():
    Xw, yw = load_wine(return_X_y=True)
    ours = cross_val_score(make_pipeline(StandardScaler(), MLPClassifier(**PARAMS)), Xw, yw, cv=5)
    theirs = cross_val_score(make_pipeline(StandardScaler(), sk.MLPClassifier(**PARAMS)), Xw, yw,
                             cv=5)
    np.testing.assert_array_equal(ours, theirs)


def test_grid_search_refits_the_best_parameters():
    grid = GridSearchCV(MLPClassifier(**PARAMS), {"hidden_layer_sizes": [(2,), (20,)],
                                                  "learning_rate_init": [1e-4, 3e-2]}, cv=3)
    grid.fit(StandardScaler().fit_transform(X), y)
    assert grid.best_params_ == {"hidden_layer_sizes": (20,), "learning_rate_init": 3e-2}
    assert grid.best_estimator_.hidden_layer_sizes == (20,)
    assert grid.best_estimator_.coefs_[0].shape == (4, 20)


def test_clone_copies_parameters_not_the_fit():
    est = MLPClassifier(**PARAMS, dropout=0.1).fit(X, y)
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    assert not hasattr(copy, "network_")


def _round_trips(est):
    yield pickle.loads(pickle.dumps(est))
    buffer = io.BytesIO()
    joblib.dump(est, buffer)
    buffer.seek(0)
    yield joblib.load(buffer)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_saved_model_predicts_identically_and_partial_fit_continues(solver):
    first, second = np.arange(0, 150, 2), np.arange(1, 150, 2)
    est = MLPClassifier(**PARAMS, solver=solver)
    est.partial_fit(X[first], y[first], classes=np.unique(y))
    for loaded in _round_trips(est):
        np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
        # the optimizer state came along
        assert loaded._solver.optimizer.t == est._solver.optimizer.t
        reference = pickle.loads(pickle.dumps(est))  # an untouched copy to continue alike
        for model in (loaded, reference):
            model.partial_fit(X[second], y[second])
        np.testing.assert_array_equal(loaded.predict_proba(X), reference.predict_proba(X))
        assert not np.array_equal(loaded.predict_proba(X), est.predict_proba(X))


def test_saved_regressor_predicts_identically():
    reg = MLPRegressor(**PARAMS).fit(X[:, :3], X[:, 3])
    for loaded in _round_trips(reg):
        np.testing.assert_array_equal(loaded.predict(X[:, :3]), reg.predict(X[:, :3]))
        assert np.shares_memory(loaded.coefs_[0], loaded.network_.params)
