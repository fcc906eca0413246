"""Accuracy beside scikit-learn with the same hyper-parameters (its defaults), 5-fold CV.

Wine only, to keep the suite fast; benchmarks/sklearn_compare.py measures digits and
breast_cancer too, and the speed, which is never tested here.
"""

import pytest
from sklearn import neural_network as sk
from sklearn.datasets import load_wine
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from matrixprop.sklearn import MLPClassifier


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_cross_validated_accuracy_at_least_sklearns():
    X, y = load_wine(return_X_y=True)
    ours = cross_val_score(make_pipeline(StandardScaler(), MLPClassifier(random_state=0)), X, y,
                           cv=5).mean()
    theirs = cross_val_score(make_pipeline(StandardScaler(), sk.MLPClassifier(random_state=0)),
                             X, y, cv=5).mean()
    assert ours >= theirs - 0.01
    assert ours > 0.95
