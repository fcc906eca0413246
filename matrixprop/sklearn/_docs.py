"""The parameter and attribute documentation the two estimators share."""

SHARED_PARAMETERS = """\
    hidden_layer_sizes : array-like of int or int, default=(100,)
        Width of each hidden layer.
    activation : str or list of str, default="relu"
        Hidden activation: scikit-learn's "identity", "logistic", "tanh", "relu", or any
        matrixprop activation ("leaky_relu", "elu", "softplus", "gelu", ...); a list gives one
        per hidden layer.
    solver : {"lbfgs", "sgd", "adam"}, default="adam"
        "lbfgs": SciPy's L-BFGS-B over the whole training set; "sgd": mini-batch gradient
        descent with (Nesterov) momentum; "adam": Adam.
    alpha : float, default=0.0001
        L2 strength: each batch's loss gains ``0.5 * alpha * ||W||^2 / n``, ``n`` the batch's
        number of samples (or the sum of its sample weights); biases are not penalized.
    batch_size : int or "auto", default="auto"
        Samples per update of the stochastic solvers; "auto" is ``min(200, n_samples)``.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        Schedule of the "sgd" solver: constant; ``learning_rate_init / (t + 1) ** power_t``
        with ``t`` the samples seen; or divided by 5 whenever ``n_iter_no_change`` epochs pass
        without progress, until it falls below 1e-6.
    learning_rate_init : float, default=0.001
        The starting step size of "sgd" and "adam".
    power_t : float, default=0.5
        Exponent of "invscaling".
    max_iter : int, default=200
        Most epochs of the stochastic solvers, or iterations of "lbfgs".
    shuffle : bool, default=True
        Reshuffle the training samples every epoch (stochastic solvers).
    random_state : int, RandomState instance or None, default=None
        Draws the initial weights, the early-stopping split, the shuffles and the dropout
        masks. Resolved at each ``fit``.
    tol : float, default=1e-4
        Progress smaller than this for ``n_iter_no_change`` consecutive epochs ends training
        (or, with "adaptive", lowers the rate); for "lbfgs", the gradient tolerance.
    verbose : bool, default=False
        Print the loss of every epoch.
    warm_start : bool, default=False
        Continue from the previous fit's weights instead of starting afresh.
    momentum : float, default=0.9
        Momentum of "sgd", in [0, 1].
    nesterovs_momentum : bool, default=True
        Nesterov's momentum for "sgd".
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified for single-output
        classification), stop when its score has not improved by ``tol`` for
        ``n_iter_no_change`` epochs, and keep the best epoch's weights.
    validation_fraction : float, default=0.1
        The held-out share for early stopping.
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's decay rates of the first and second moment estimates.
    epsilon : float, default=1e-8
        Adam's guard against dividing by zero (added to ``sqrt(v)`` before bias correction,
        as scikit-learn does).
    n_iter_no_change : int or numpy.inf, default=10
        Epochs without ``tol`` progress before stopping (stochastic solvers).
    max_fun : int, default=15000
        Most loss evaluations of "lbfgs".
"""

EXTRA_PARAMETERS = """\
    dropout : float or list of float, default=0.0
        Dropout on the hidden layers' outputs during training (one rate, or one per hidden
        layer); stochastic solvers only.
    optimizer : matrixprop Optimizer or None, default=None
        Replaces the solver's update rule, e.g. ``mp.optimizers.Adam(lr={"layers.0.weight":
        1e-3, "default": 1e-2})`` for per-weight or per-layer rates. A copy is trained; with
        ``solver="sgd"`` the ``learning_rate`` schedule scales its rates.
    callbacks : list of matrixprop Callback or None, default=None
        Called during training (:mod:`matrixprop.callbacks`): each epoch, or each L-BFGS
        iteration, is an epoch for them; one that sets ``state.stop_training`` ends the fit.
    accelerate : "auto", True or False, default="auto"
        Whether the stochastic solvers run their epochs compiled (``pip install
        "matrixprop[fast]"``, numba): "auto" when numba is installed and the fit allows it (no
        dropout, not the Poisson loss), True to require it, False for
        the NumPy engine. Both compute the same updates, equal to float rounding.
"""

SHARED_ATTRIBUTES = """\
    network_ : matrixprop.Network
        The trained network: export it with ``matrixprop.onnx.export(network_, path)`` or
        ``matrixprop.to_torch(network_)``.
    coefs_ : list of ndarray of shape (fan_in, fan_out)
        Layer ``i``'s weights, a view of ``network_.layers[i].W.T``.
    intercepts_ : list of ndarray of shape (fan_out,)
        Layer ``i``'s biases, a view of ``network_.layers[i].b``.
    loss_ : float
        The loss of the last epoch (mean over its batches, L2 term included), or of the
        L-BFGS solution.
    best_loss_ : float or None
        The lowest ``loss_`` so far (None with early stopping; stochastic solvers only).
    loss_curve_ : list of float
        ``loss_`` after every epoch (stochastic solvers only).
    validation_scores_ : list of float or None
        The held-out score after every epoch, with early stopping.
    validation_loss_curve_ : list of float or None
        The held-out data loss (no L2 term) after every epoch, with early stopping.
    best_validation_score_ : float or None
        The best held-out score, with early stopping.
    t_ : int
        Training samples seen by the stochastic solver.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Their names, when X had string column names.
    n_iter_ : int
        Epochs (or L-BFGS iterations) run by the last fit.
    n_layers_ : int
        Number of layers, input and output included.
    n_outputs_ : int
        Number of outputs.
    out_activation_ : str
        scikit-learn's name of the output activation.
"""
