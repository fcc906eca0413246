"""scikit-learn estimators trained by matrixprop: a one-line switch from scikit-learn's MLP.

>>> from matrixprop.sklearn import MLPClassifier   # was: from sklearn.neural_network import ...
"""

from .classifier import MLPClassifier
from .regressor import MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
