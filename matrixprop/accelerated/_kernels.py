"""Numba kernels of a training epoch: the same equations as the NumPy engine, fused.

The NumPy engine spends one library call per elementwise operation and, at small batches, more
time in Python than in arithmetic. Here a whole run of steps is one compiled call: each layer is
one BLAS product plus ONE pass that adds the bias and computes both ``a = f(z)`` and ``f'(z)``;
the backward pass is one pass per layer for ``D = G * f'(Z)`` and ``db``; the optimizer is one
pass over each layer's parameters (over all of them at once with clipping, which needs the
whole gradient's norm first). SGD needs less: plain SGD's step ``W -= lr D^T A`` is the
weight-gradient product itself, done by BLAS into ``W``, and momentum's buffer update is that
product done into the buffer (the gradient buffer then does not hold the weights' gradients),
followed by BLAS's ``axpy`` for ``W -= lr buffer``, which OpenBLAS multithreads for large layers.

A step is two passes. The rows pass (gather, forward, loss, every layer's delta) treats each
row on its own; the units pass (each layer's weight gradient over the whole batch and the
update) treats each output unit on its own: every update rule is elementwise. So on several
cores each pass splits into shares, one per core, with one BLAS thread each: the gathering,
the elementwise passes and the optimizer then run on every core, not on one while BLAS's other
threads wait (``train_steps_split``).

The elementwise rules are the components' own: every activation's and loss's ``scalar`` rule
(and the cross-entropies' ``logit_term``) is compiled from its class and fused here, and the
kernels that fuse them are cached under a digest of their source. An update rule's twin is
here, found by the name its optimizer class declares (``Optimizer.compiled_rule``).
"""

from __future__ import annotations

import hashlib
import inspect
import math
from types import FunctionType

import llvmlite.binding as llvm
import numpy as np
from numba import njit, prange, types
from numba.extending import get_cython_function_address

from .. import activations, losses

# error_model="numpy": x / 0 gives inf or nan as in NumPy, with no Python-style zero check in the
# loops (that check is a branch per division and keeps the loops from being vectorized);
# nogil: other Python threads run meanwhile (inference splits its rows over threads)
_compiled = njit(cache=True, nogil=True, error_model="numpy")
_inlined = njit(inline="always", error_model="numpy")
_uncached = njit(error_model="numpy")

# the update rules, each with the names of the hyper-parameters it reads from its array
# (Optimizer.compiled_hyper) and, for its slots s1, s2, s3, the state buffer each holds and the
# hyper-parameter without which it is not used (None: always used)
SGD, ADAM, ADAGRAD, RMSPROP = range(4)
RULES = {
    "sgd": (SGD, ("weight_decay", "decoupled", "momentum", "dampening", "nesterov"),
            (("momentum_buffer", "momentum"), ("", None), ("", None))),
    "adam": (ADAM, ("weight_decay", "decoupled", "beta1", "beta2", "eps",
                    "eps_before_bias_correction"),
             (("exp_avg", None), ("exp_avg_sq", None), ("", None))),
    "adagrad": (ADAGRAD, ("weight_decay", "decoupled", "eps", "lr_decay"),
                (("sum", None), ("", None), ("", None))),
    "rmsprop": (RMSPROP, ("weight_decay", "decoupled", "alpha", "eps", "momentum", "centered"),
                (("square_avg", None), ("grad_avg", "centered"),
                 ("momentum_buffer", "momentum"))),
}


def _blas(name: str, n_args: int):
    """SciPy's BLAS routine ``name`` (the library numba's np.dot calls), by symbol name so that
    the cached kernels find it in every process; every argument by reference (Fortran)."""
    symbol = f"matrixprop_{name}"
    llvm.add_symbol(symbol, get_cython_function_address("scipy.linalg.cython_blas", name))
    return types.ExternalFunction(symbol, types.void(*([types.voidptr] * n_args)))


# C <- alpha op(A) op(B) + beta C; and y <- a x + y, which OpenBLAS spreads over its threads
# for long vectors
_sgemm, _dgemm = _blas("sgemm", 13), _blas("dgemm", 13)
_saxpy, _daxpy = _blas("saxpy", 6), _blas("daxpy", 6)

def _dispatcher(name: str, rules, arity: int, compile_as=None):
    """One compiled ``name(code, x0, ..)`` returning ``rules[code](x0, ..)``: numba can neither
    index a tuple of functions by a number known at run time nor pass ``*args`` on to a
    closure, so the chain of branches is written out as source, once per kernel import.
    ``compile_as``: the decorator (default: a function of its own, not cached)."""
    args = ", ".join(f"x{j}" for j in range(arity))
    branches = "".join(f"    if code == {code}:\n        return rule{code}({args})\n"
                       for code in range(len(rules) - 1))
    source = f"def {name}(code, {args}):\n{branches}    return rule{len(rules) - 1}({args})\n"
    namespace = {f"rule{code}": rule for code, rule in enumerate(rules)}
    exec(compile(source, f"<matrixprop {name}>", "exec"), namespace)
    return (compile_as or _uncached)(namespace[name])


def _fingerprint(functions) -> str:
    """A digest of the rules' source: the kernels that fuse them are cached under it, since
    numba's disk cache notices changes to a kernel's own file only."""
    digest = hashlib.sha256()
    for function in functions:
        digest.update(inspect.getsource(function).encode())
    return digest.hexdigest()[:16]


# An activation's code is its place among the registry's activations that state a scalar rule;
# softmax, the one whose value needs its whole row, has a loop of its own.
SCALAR_ACTIVATIONS = tuple(cls for cls in activations.classes() if cls.scalar is not None)
SOFTMAX = -1
# A loss's code is its place in the registry of losses.
LOSSES = tuple(losses.classes())


def activation_code(activation) -> int | None:
    """The kernels' code for ``activation``, or None when it has no compiled form: its class
    must be a registered one (a subclass may have changed its NumPy form)."""
    if type(activation) is activations.Softmax:
        return SOFTMAX
    return next((code for code, cls in enumerate(SCALAR_ACTIVATIONS)
                 if type(activation) is cls), None)


def loss_code(loss) -> int | None:
    """The kernels' code for ``loss``, or None when it has no compiled form (as for
    :func:`activation_code`, its class must be a registered one)."""
    return next((code for code, cls in enumerate(LOSSES) if type(loss) is cls), None)


def _no_logit_term(z, y, lse):  # losses without one are never asked for it
    return 0.0


_RULES = [cls.scalar for cls in SCALAR_ACTIVATIONS] + [cls.scalar for cls in LOSSES] + [
    cls.logit_term for cls in LOSSES if cls.logit_term is not None]
RULES_FINGERPRINT = _fingerprint(_RULES)
# inlined: they run once per output element, where the cost of a call shows
_loss_term = _dispatcher("_loss_term", [_inlined(cls.scalar) for cls in LOSSES], 2, _inlined)
_loss_logit_term = _dispatcher(
    "_loss_logit_term", [_inlined(cls.logit_term or _no_logit_term) for cls in LOSSES], 3,
    _inlined)


@_compiled
def _softmax(Z, b, A, rows):
    """A = softmax(Z + b), row by row, shifted by the row's maximum."""
    m = Z.shape[1]
    for i in range(rows):
        for j in range(m):
            A[i, j] = Z[i, j] + b[j]
        top = A[i, 0]
        for j in range(1, m):
            top = max(top, A[i, j])
        total = 0.0
        for j in range(m):
            e = math.exp(A[i, j] - top)
            A[i, j] = e
            total += e
        for j in range(m):
            A[i, j] /= total


def _loop_of(activation: type):
    """The compiled loop A = f(Z + b), F = f'(Z + b) of an activation class's scalar rule
    ``f``: each activation gets its own tight loop (a branch on the activation inside the loop
    keeps it from being vectorized). An empty ``F`` (inference) skips the derivative."""
    f = _inlined(activation.scalar)

    def loop(param, Z, b, A, F, rows):
        m = Z.shape[1]
        if F.shape[0] == 0:
            for i in range(rows):
                for j in range(m):
                    A[i, j] = f(Z[i, j] + b[j], param)[0]
            return
        for i in range(rows):
            for j in range(m):
                a, d = f(Z[i, j] + b[j], param)
                A[i, j] = a
                F[i, j] = d

    # numba names a compiled function by its module, qualified name and a counter of the
    # process, and a kernel loaded from the disk cache calls its callees by those names: the
    # closures of one factory, sharing a qualified name, could be taken for each other once the
    # counter runs differently, so each loop gets a name of its own. Not cached itself (a
    # closure's cache key differs in every process): the cached kernels keep the compiled loop.
    loop.__name__ = loop.__qualname__ = f"_loop_{activation.__module__}_{activation.__name__}"
    return _uncached(loop)


_activation_loop = _dispatcher(
    "_activation_loop", [_loop_of(cls) for cls in SCALAR_ACTIVATIONS], 6)


@_uncached
def _activate(code, param, Z, b, A, F, rows):
    """A = f(Z + b) and F = f'(Z + b), in one pass (softmax: A only)."""
    if code == SOFTMAX:
        _softmax(Z, b, A, rows)
    else:
        _activation_loop(code, param, Z, b, A, F, rows)


@_uncached
def _activation_pass(code, param, Z, b, A, F, rows, keep_logits):
    """:func:`_activate`, or with ``keep_logits`` (the output layer of a loss taken from its
    logits) F = Z + b, kept for the loss, and A = f(Z + b) without derivative (the fused
    delta needs none)."""
    if not keep_logits:
        _activate(code, param, Z, b, A, F, rows)
        return
    m = Z.shape[1]
    for i in range(rows):
        for j in range(m):
            F[i, j] = Z[i, j] + b[j]
    _activate(code, param, Z, b, A, F[:0], rows)


@_uncached
def _loss_and_delta(loss_code, fused, from_logits, softmax_output, A, F, Y, wb, weighted, c, D,
                    rows):
    """The batch's sum of loss terms (weighted), and D_L = dL/dZ_L written into D. ``F``: the
    logits with ``from_logits`` (then the terms are taken from them, exact also where A
    rounds to 0 or 1), else f'(Z)."""
    m = A.shape[1]
    total = 0.0
    for i in range(rows):
        w = wb[i] if weighted else 1.0
        lse = 0.0  # the row's log-sum-exp of the logits, for a softmax output
        if from_logits and softmax_output:
            top = F[i, 0]
            for j in range(1, m):
                top = max(top, F[i, j])
            exp_sum = 0.0
            for j in range(m):
                exp_sum += math.exp(F[i, j] - top)
            lse = top + math.log(exp_sum)
        row = 0.0
        for j in range(m):
            a, y = A[i, j], Y[i, j]
            if from_logits:
                row += _loss_logit_term(loss_code, F[i, j], y, lse)
                g = a - y
            else:
                term, g = _loss_term(loss_code, a, y)
                row += term
            D[i, j] = (a - y if fused else g) * c * w
        total += w * row
        if fused:
            continue
        if softmax_output:  # D = S * (G - sum(G * S))
            dot = 0.0
            for j in range(m):
                dot += D[i, j] * A[i, j]
            for j in range(m):
                D[i, j] = A[i, j] * (D[i, j] - dot)
        else:
            for j in range(m):
                D[i, j] *= F[i, j]
    return total


@_compiled
def _bias_gradient_and_delta(D, F, db, has_bias, rows, apply_derivative):
    """D <- D * F (when asked), then db = the column sums of D."""
    m = D.shape[1]
    if apply_derivative:
        for i in range(rows):
            for j in range(m):
                D[i, j] *= F[i, j]
    if has_bias:
        db[:] = 0.0
        for i in range(rows):
            for j in range(m):
                db[j] += D[i, j]


@_compiled
def _hits(A, labels, rows):
    """How many rows' predicted class equals their label."""
    count = 0
    m = A.shape[1]
    for i in range(rows):
        if m == 1:
            predicted = 1 if A[i, 0] > 0.5 else 0
        else:
            predicted = 0
            for j in range(1, m):
                if A[i, j] > A[i, predicted]:
                    predicted = j
        if predicted == labels[i]:
            count += 1
    return count


@_compiled
def _gemm_into(C, D, A, u0, u1, alpha, beta, ints, scalars, flags):
    """C[u0:u1] <- alpha D[:, u0:u1]^T A + beta C[u0:u1] by BLAS: the weight-gradient product
    of output units ``[u0, u1)``, landing in the gradient, in the weights (plain SGD:
    alpha = -lr, beta = 1) or in the momentum buffer (alpha = 1 - dampening, beta = momentum),
    so the gradient never makes a trip through memory. ``ints``, ``scalars`` and ``flags`` are
    scratch for BLAS's by-reference arguments."""
    n_out, n_in = C.shape
    # row-major C^T is column-major (n_in, n_out): C^T <- alpha A^T D + beta C^T
    ints[0], ints[1], ints[2] = n_in, u1 - u0, D.shape[0]  # m, n, k
    ints[3], ints[4], ints[5] = n_in, n_out, n_in  # leading dimensions of A, D, C
    scalars[0], scalars[1] = alpha, beta
    flags[0], flags[1] = ord("N"), ord("T")
    args = (flags[0:].ctypes, flags[1:].ctypes, ints[0:].ctypes, ints[1:].ctypes,
            ints[2:].ctypes, scalars[0:].ctypes, A.ctypes, ints[3:].ctypes, D[0, u0:].ctypes,
            ints[4:].ctypes, scalars[1:].ctypes, C[u0:u1].ctypes, ints[5:].ctypes)
    if C.itemsize == 4:
        _sgemm(*args)
    else:
        _dgemm(*args)


@_compiled
def _weight_gradient_into(C, D, A, sums, u0, u1, alpha, beta, ints, scalars, flags):
    """C[u0:u1] <- alpha G[u0:u1] + beta C[u0:u1] for the weight gradient G = D^T A of output
    units ``[u0, u1)``: by BLAS (_gemm_into), or, when ``sums`` holds the shares' products
    over their own rows (shape (parts, n_out, n_in)), as their sum."""
    if sums.shape[0] == 0:
        _gemm_into(C, D, A, u0, u1, alpha, beta, ints, scalars, flags)
        return
    n_in = C.shape[1]
    for u in range(u0, u1):
        row, first = C[u], sums[0, u]
        for j in range(n_in):  # with beta = 0, C's old values are not read (as for BLAS)
            row[j] = (beta * row[j] if beta != 0.0 else 0.0) + alpha * first[j]
        for p in range(1, sums.shape[0]):
            share = sums[p, u]
            for j in range(n_in):
                row[j] += alpha * share[j]


@_compiled
def _axpy_into(y, x, a, ints, scalars):
    """y <- a x + y by BLAS over two contiguous arrays of one size."""
    ints[0], ints[1] = x.size, 1
    scalars[0] = a
    args = (ints[0:].ctypes, scalars[0:].ctypes, x.ctypes, ints[1:].ctypes, y.ctypes,
            ints[1:].ctypes)
    if y.itemsize == 4:
        _saxpy(*args)
    else:
        _daxpy(*args)


@_compiled
def _momentum_buffer(s1, grads, momentum, dampening, t):
    """buf <- momentum buf + (1 - dampening) g (buf <- g at the first step, as PyTorch)."""
    for i in range(s1.shape[0]):
        s1[i] = grads[i] if t == 1 else momentum * s1[i] + (1.0 - dampening) * grads[i]


@_compiled
def _prepare_gradient(params, grads, n_weights, l2f, clip, wd, decoupled, lr, per_weight):
    """The book's L2, gradient clipping and weight decay, each one tight pass when in use."""
    size = params.shape[0]
    if l2f != 0.0:
        for i in range(n_weights):
            grads[i] += l2f * params[i]
    if clip >= 0.0:
        norm = 0.0
        for i in range(size):
            norm += grads[i] * grads[i]
        norm = math.sqrt(norm)
        if norm > clip:
            scale = clip / norm
            for i in range(size):
                grads[i] *= scale
    if wd != 0.0 and decoupled:
        for i in range(size):
            params[i] *= 1.0 - (lr[i] if per_weight else lr[0]) * wd
    elif wd != 0.0:
        for i in range(size):
            grads[i] += wd * params[i]


@_compiled
def _apply(params, direction, lr, per_weight):
    """p <- p - lr * direction."""
    if per_weight:
        for i in range(params.shape[0]):
            params[i] -= direction[i] * lr[i]
    else:
        rate = lr[0]
        for i in range(params.shape[0]):
            params[i] -= direction[i] * rate


@_inlined
def _adam_range(params, grads, s1, s2, lr, per_weight, start, stop, l2, c):
    """Adam's moments, its direction and p -= lr * direction over ``[start, stop)`` in one
    pass, the gradient first gaining ``l2 * p`` (kept in ``grads``) when ``l2`` is not 0.
    ``c``: the constants in the parameters' dtype (see _optimizer_step)."""
    k0, k1, k2, k3, k4, k5, k6, rate = c[0], c[1], c[2], c[3], c[4], c[5], c[6], lr[0]
    for i in range(start, stop):
        if l2 != 0:
            grads[i] += l2 * params[i]
        g = grads[i]
        m = k0 * s1[i] + k1 * g
        v = k2 * s2[i] + k3 * (g * g)
        s1[i] = m
        s2[i] = v
        params[i] -= m / (np.sqrt(v) * k4 + k5) * k6 * (lr[i] if per_weight else rate)


@_compiled
def _optimizer_step(opt_code, hyper, lr, params, grads, s1, s2, s3, t, n_weights, l2f, clip, c):
    """One optimizer update over the flat buffers (the same rule as matrixprop.optimizers).

    State buffers: SGD s1 = momentum; Adam s1, s2 = first and second moments; Adagrad s1 = sum
    of squares; RMSprop s1 = mean square, s2 = mean gradient (centered), s3 = momentum.
    ``grads`` ends as the NumPy engine leaves it: the gradient, with the L2 and weight-decay
    terms it gained and clipped. ``c`` is scratch for constants in the parameters' dtype.
    """
    size = params.shape[0]
    per_weight = lr.shape[0] > 1
    # Adam adds the book's L2 in its own pass when nothing else needs the whole gradient first
    adam_l2 = opt_code == ADAM and clip < 0.0 and hyper[0] == 0.0
    _prepare_gradient(params, grads, n_weights, 0.0 if adam_l2 else l2f, clip, hyper[0],
                      hyper[1] != 0.0, lr, per_weight)
    rate = lr[0]
    if opt_code == SGD:
        momentum, dampening, nesterov = hyper[2], hyper[3], hyper[4] != 0.0
        if momentum == 0.0:
            _apply(params, grads, lr, per_weight)
            return
        _momentum_buffer(s1, grads, momentum, dampening, t)
        if not nesterov:
            _apply(params, s1, lr, per_weight)
            return
        for i in range(size):  # Nesterov's direction g + momentum * buf
            params[i] -= (grads[i] + momentum * s1[i]) * (lr[i] if per_weight else rate)
    elif opt_code == ADAM:
        b1, b2, eps = hyper[2], hyper[3], hyper[4]
        correction = 1.0 / math.sqrt(1.0 - b2**t)
        if hyper[5] != 0.0:  # eps added to sqrt(v) before the bias correction (scikit-learn)
            eps *= correction
        # the constants in the parameters' dtype (read back from c), so float32 runs as a
        # float32 loop
        c[0], c[1], c[2], c[3] = b1, 1.0 - b1, b2, 1.0 - b2
        c[4], c[5], c[6] = correction, eps, 1.0 / (1.0 - b1**t)
        c[7] = l2f if adam_l2 else 0.0  # the L2 factor, cast to the parameters' dtype
        _adam_range(params, grads, s1, s2, lr, per_weight, 0, n_weights, c[7], c)
        _adam_range(params, grads, s1, s2, lr, per_weight, n_weights, size, 0.0, c)
    elif opt_code == ADAGRAD:
        eps, decay = hyper[2], 1.0 / (1.0 + (t - 1) * hyper[3])
        for i in range(size):
            g = grads[i]
            s1[i] += g * g
            params[i] -= g / (math.sqrt(s1[i]) + eps) * decay * (lr[i] if per_weight else rate)
    else:  # RMSprop
        alpha, eps, momentum, centered = hyper[2], hyper[3], hyper[4], hyper[5] != 0.0
        for i in range(size):
            g = grads[i]
            s1[i] = alpha * s1[i] + (1.0 - alpha) * (g * g)
            if centered:
                s2[i] = alpha * s2[i] + (1.0 - alpha) * g
                direction = g / (math.sqrt(s1[i] - s2[i] * s2[i]) + eps)
            else:
                direction = g / (math.sqrt(s1[i]) + eps)
            if momentum != 0.0:
                s3[i] = momentum * s3[i] + direction
                direction = s3[i]
            params[i] -= direction * (lr[i] if per_weight else rate)


# how a step uses its weight-gradient products (see _units_pass)
FOLD_SGD, FOLD_MOMENTUM, STEP, GRADIENT = range(4)


@_compiled
def _gather(data, order, first, r0, r1, xb, yb, wb, lb):
    """Rows ``order[first + r]`` of the data into row ``r`` of the batch, for r in [r0, r1)
    (explicit loops: faster than slice copies)."""
    X, Y, labels, w = data
    n_in, n_out = X.shape[1], Y.shape[1]
    for r in range(r0, r1):
        src = order[first + r]
        for j in range(n_in):
            xb[r, j] = X[src, j]
        for j in range(n_out):
            yb[r, j] = Y[src, j]
        if wb.shape[0] > 0:
            wb[r] = w[src]
        if lb.shape[0] > 0:
            lb[r] = labels[src]


# The two passes below are inlined into the step kernels (a call that passes their ~40
# arrays costs reference counts that show at small batches). In the
# parallel kernel, numba's analysis of inlined code asserts that an array variable assigned
# twice keeps one shape, so the choices between arrays of different shapes are the calls
# below, as is the squared norm (numba makes NumPy reductions there parallel loops).
@_compiled
def _squared_norm(v):
    """||v||^2 by BLAS, as the NumPy engine computes it (a call: in the parallel kernel
    numba would make ``np.dot`` a parallel loop of its own)."""
    return np.dot(v, v)


@_compiled
def _layer_input(k, xb, As):
    """The input of layer ``k``: the batch, or the activations of layer ``k - 1``."""
    return xb if k == 0 else As[k - 1]


@_compiled
def _rates(lr, start, stop):
    """The learning rates of parameters ``[start, stop)``: their slice of per-weight rates,
    or the one rate."""
    return lr[start:stop] if lr.shape[0] > 1 else lr


@_inlined
def _rows_pass(data, order, first, r0, r1, layers, buffers, loss, c, db_parts, dW_parts, part,
               scratch):
    """The batch's rows ``[r0, r1)`` up to the weight gradients, which are the first to need
    other rows: gather them; forward, Z = A_prev W^T (BLAS; into ``ZTs[k]`` as Z^T = W A_prev^T
    when it is not empty) then A = f(Z + b), F = f'(Z + b) in one pass; the loss and
    D_L = dL/dZ_L (scaled by ``c``); backward, each layer's
    D = (D_next W_next) * F, whose column sums over these rows go to ``db_parts[k][part]``,
    and, when ``dW_parts`` is not empty, D^T A_prev over these rows to ``dW_parts[k][part]``
    (BLAS). Returns (the rows' loss terms summed, weighted; their hits)."""
    Ws, bs, has_bias, codes, aparams = layers[0], layers[1], layers[4], layers[5], layers[6]
    As, Fs, Ds, xb, yb, wb, lb, ZTs = buffers
    loss_code, fused, classify, from_logits = loss[0], loss[1], loss[4], loss[5]
    L, rows = len(Ws), r1 - r0
    ints, constants, flags = scratch[0][part], scratch[1][part], scratch[2][part]
    _gather(data, order, first, r0, r1, xb, yb, wb, lb)
    for k in range(L):
        Z = As[k][r0:r1]
        logits = from_logits and k == L - 1
        if ZTs[k].shape[1] > 0:  # Z^T = W A_prev^T: at small batches BLAS's faster layout
            np.dot(Ws[k], _layer_input(k, xb, As)[r0:r1].T, ZTs[k])
            _activation_pass(codes[k], aparams[k], ZTs[k].T, bs[k], Z, Fs[k][r0:r1], rows,
                             logits)
        else:
            np.dot(_layer_input(k, xb, As)[r0:r1], Ws[k].T, Z)
            _activation_pass(codes[k], aparams[k], Z, bs[k], Z, Fs[k][r0:r1], rows, logits)
    A = As[L - 1][r0:r1]
    hits = _hits(A, lb[r0:r1], rows) if classify else 0
    value = _loss_and_delta(loss_code, fused, from_logits, codes[L - 1] == SOFTMAX, A,
                            Fs[L - 1][r0:r1], yb[r0:r1], wb[r0:r1], wb.shape[0] > 0, c,
                            Ds[L - 1][r0:r1], rows)
    for k in range(L - 1, -1, -1):  # D_L already holds f'
        D = Ds[k][r0:r1]
        _bias_gradient_and_delta(D, Fs[k][r0:r1], db_parts[k][part], has_bias[k], rows,
                                 k < L - 1)
        if dW_parts[k].shape[0] > 0:
            _gemm_into(dW_parts[k][part], D, _layer_input(k, xb, As)[r0:r1], 0,
                       Ws[k].shape[0], 1.0, 0.0, ints, constants, flags)
        if k > 0:
            np.dot(D, Ws[k], Ds[k - 1][r0:r1])  # dL/dA_prev = D W
    return value, hits


@_inlined
def _units_pass(part, parts, layers, buffers, mode, optimizer, t, Ms, offsets, l2, db_parts,
                dW_parts, scratch):
    """Each layer's output units in share ``part`` of ``parts`` (rows ``[u0, u1)`` of W):
    their weight gradient D[:, u0:u1]^T A_prev over the whole batch (or the sum of the parts'
    products over their rows, ``dW_parts``, when not empty) and their bias gradient (the
    parts' column sums added up), then by ``mode``: FOLD_SGD, the product went into W;
    FOLD_MOMENTUM, it went into the momentum buffer ``Ms`` and W <- W - lr buffer follows;
    STEP, the optimizer's rule over these units' weights (every rule is elementwise, given no
    clipping); in all three the biases then take the rule's step (plain SGD or momentum when
    folded). GRADIENT: nothing more (the caller steps over all parameters). ``t``: the step
    count after this step."""
    Ws, dWs, dbs, has_bias = layers[0], layers[2], layers[3], layers[4]
    As, Ds, xb = buffers[0], buffers[2], buffers[3]
    opt_code, hyper, lr, params, grads, s1, s2, s3 = optimizer
    w_offsets, b_offsets = offsets
    ints, constants, flags = scratch[0][part], scratch[1][part], scratch[2][part]
    momentum, dampening = hyper[2], hyper[3]
    per_weight = lr.shape[0] > 1
    for k in range(len(Ws) - 1, -1, -1):
        n_out, n_in = Ws[k].shape
        u0, u1 = n_out * part // parts, n_out * (part + 1) // parts
        if u1 == u0:
            continue
        D, A_prev = Ds[k], _layer_input(k, xb, As)
        sums = dW_parts[k]
        if mode == FOLD_SGD:
            _weight_gradient_into(Ws[k], D, A_prev, sums, u0, u1, -lr[0], 1.0, ints,
                                  constants, flags)
        elif mode == FOLD_MOMENTUM:  # PyTorch's first step: buffer <- gradient
            _weight_gradient_into(Ms[k], D, A_prev, sums, u0, u1,
                                  1.0 if t == 1 else 1.0 - dampening,
                                  0.0 if t == 1 else momentum, ints, constants, flags)
        else:
            _weight_gradient_into(dWs[k], D, A_prev, sums, u0, u1, 1.0, 0.0, ints, constants,
                                  flags)
        if has_bias[k]:
            db = dbs[k]
            for j in range(u0, u1):
                db[j] = db_parts[k][0, j]
                for p in range(1, parts):
                    db[j] += db_parts[k][p, j]
        w0, w1 = w_offsets[k] + u0 * n_in, w_offsets[k] + u1 * n_in
        b0, b1 = b_offsets[k] + u0, b_offsets[k] + u1
        if mode == FOLD_MOMENTUM:  # W <- W - lr buffer
            if per_weight:
                _apply(params[w0:w1], s1[w0:w1], lr[w0:w1], True)
            else:  # by BLAS, multithreaded for large layers
                _axpy_into(Ws[k][u0:u1], Ms[k][u0:u1], -lr[0], ints, constants)
        elif mode == STEP:
            _optimizer_step(opt_code, hyper, _rates(lr, w0, w1), params[w0:w1],
                            grads[w0:w1], s1[w0:w1], s2[w0:w1], s3[w0:w1], t, w1 - w0, l2,
                            -1.0, constants)
        if has_bias[k] and mode != GRADIENT:  # the biases take the rule's own step
            _optimizer_step(opt_code, hyper, _rates(lr, b0, b1), params[b0:b1], grads[b0:b1],
                            s1[b0:b1], s2[b0:b1], s3[b0:b1], t, 0, l2, -1.0, constants)


def _train_steps(parts, data, order, start, stop, B, layers, buffers, loss, optimizer,
                 n_weights, offsets, l2f, l2_per_batch, clip, halt, t, Ms, db_parts, dW_parts):
    """Train on ``order[start:stop]`` in batches of exactly ``B`` rows, each step in two
    passes of ``parts`` shares: the batch's rows (_rows_pass), then the layers' output units
    (_units_pass). Compiled twice: ``train_steps`` runs the shares in turn (parts = 1);
    ``train_steps_split`` runs them at once on numba's threads, BLAS then held to one thread
    each by the caller.

    L2: the gradient gains ``l2f * W``; with ``l2_per_batch`` (scikit-learn's objective) it
    gains ``l2f / n * W`` instead, ``n`` the batch's count (or sum of weights), and the loss its
    term ``0.5 * l2f / n * ||W||^2``. ``halt``: stop at the first non-finite loss. ``Ms``: the
    momentum buffer's block of each layer's weights, shaped as the weights; ``db_parts``: each
    layer's (parts, n_out) scratch for the shares' bias-gradient sums; ``dW_parts``: each
    layer's (parts, n_out, n_in) scratch for the shares' weight-gradient products over their
    own rows, whose sums then make the weight gradients (each core reads only rows it
    computed), or (0, n_out, n_in) arrays: each share's units then take the product over the
    whole batch. The last of ``buffers``, ``ZTs``: each layer's (n_out, B) scratch for Z^T,
    computed as W A_prev^T, BLAS's faster layout at small batches (one share only), or
    (n_out, 0) arrays.

    Returns (sum of per-batch losses weighted as the epoch's mean needs, hits, the optimizer's
    step count after the call, index of the first batch whose loss was not finite or -1).
    """
    w, n_out = data[3], data[1].shape[1]
    Ws, bs, dWs, dbs, has_bias, codes, aparams = layers
    As, Fs, Ds, xb, yb, wb, lb, ZTs = buffers
    opt_code, hyper, lr, params, grads, s1, s2, s3 = optimizer
    per_sample, per_output = loss[2], loss[3]
    constants = np.empty(8, params.dtype)  # the optimizer's, in the parameters' dtype
    scratch = (np.empty((parts, 6), np.int32), np.empty((parts, 8), params.dtype),
               np.empty((parts, 2), np.uint8))  # BLAS's arguments and constants, per share
    row_values, row_hits = np.zeros(parts), np.zeros(parts, np.int64)
    # SGD with nothing added to the gradient: plain SGD's step, or the momentum buffer, goes
    # into the weight-gradient products (Nesterov's direction needs the gradient itself)
    unfolded = GRADIENT if clip >= 0.0 else STEP
    folded = unfolded
    if opt_code == SGD and hyper[0] == 0.0 and l2f == 0.0 and clip < 0.0 and hyper[4] == 0.0:
        folded = FOLD_MOMENTUM if hyper[2] != 0.0 else FOLD_SGD if lr.shape[0] == 1 else STEP
    weighted = w.shape[0] > 0
    total, hits, bad = 0.0, 0, -1
    step = 0
    for first in range(start, stop, B):
        # the last step computes the gradient itself, so that the gradient buffer ends as the
        # NumPy engine leaves it
        mode = folded if first + B < stop else unfolded
        count = 0.0
        if weighted:
            for r in range(B):
                count += w[order[first + r]]
        else:
            count = float(B)
        c = 1.0  # the loss's reduction constant (Loss.scale)
        if per_sample:
            c /= count
        if per_output:
            c /= n_out
        for part in prange(parts):  # numba's parallel loops take flat tuples only: repacked
            value_part, hits_part = _rows_pass(
                data, order, first, B * part // parts, B * (part + 1) // parts,
                (Ws, bs, dWs, dbs, has_bias, codes, aparams), (As, Fs, Ds, xb, yb, wb, lb, ZTs),
                loss, c, db_parts, dW_parts, part, scratch)
            row_values[part] = value_part
            row_hits[part] = hits_part
        value = 0.0
        for part in range(parts):  # plain loops: in the parallel kernel, NumPy's reductions
            value += row_values[part]  # would become parallel loops of their own
            hits += row_hits[part]
        value *= c
        l2 = l2f
        if l2_per_batch and l2f != 0.0:
            l2 = l2f / count
            value += 0.5 * l2 * _squared_norm(params[:n_weights])
        if not math.isfinite(value) and bad < 0:
            bad = step
            if halt:
                break
        total += value * B if per_sample else value
        t += 1
        for part in prange(parts):
            _units_pass(part, parts, (Ws, bs, dWs, dbs, has_bias, codes, aparams),
                        (As, Fs, Ds, xb, yb, wb, lb, ZTs), mode, optimizer, t, Ms, offsets, l2,
                        db_parts, dW_parts, scratch)
        if mode == GRADIENT:
            _optimizer_step(opt_code, hyper, lr, params, grads, s1, s2, s3, t, n_weights, l2,
                            clip, constants)
        step += 1
    return total, hits, t, bad


def _under_name(f, name: str):
    """A copy of function ``f`` named ``name``: numba's disk cache files a function's compiled
    forms by its name alone, whatever the compile options, so each compiled form of one
    source needs its own name."""
    twin = FunctionType(f.__code__, f.__globals__, name, f.__defaults__, f.__closure__)
    twin.__qualname__ = name
    return twin


train_steps = _compiled(_under_name(_train_steps, f"train_steps_{RULES_FINGERPRINT}"))
train_steps_split = njit(cache=True, nogil=True, error_model="numpy", parallel=True)(
    _under_name(_train_steps, f"train_steps_split_{RULES_FINGERPRINT}"))


# reassociation only: the sum below vectorizes, and NaN and infinities still propagate
@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})
def _all_finite(Z):
    """Whether every element of ``Z`` is finite (``z - z`` is 0 for those, NaN for the rest)."""
    total = Z.dtype.type(0.0)
    for i in range(Z.shape[0]):
        for j in range(Z.shape[1]):
            total += Z[i, j] - Z[i, j]
    return total == 0.0


def _predict_rows(X, Ws, bs, codes, aparams, As, no_derivative, out, chunk):
    """``out`` = the network's outputs for the rows of ``X``, ``chunk`` rows at a time: per
    layer one BLAS product into ``As[k]`` (the last layer: straight into ``out``) and one pass
    for bias and activation.

    Returns whether the first layer's products were all finite. A NaN or an infinity in a row
    of ``X`` makes that row's products NaN or infinite whatever the (finite) weights, so a
    True clears ``X`` without a pass over it of its own; a False calls for the exact check
    (large finite values can overflow too)."""
    L = len(Ws)
    n = X.shape[0]
    finite = True
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        rows = stop - start
        A_prev = X[start:stop]
        for k in range(L):
            target = out[start:stop] if k == L - 1 else As[k][:rows]
            np.dot(A_prev, Ws[k].T, target)
            if k == 0 and finite:
                finite = _all_finite(target)
            _activate(codes[k], aparams[k], target, bs[k], target, no_derivative, rows)
            A_prev = target
    return finite


predict_rows = _compiled(_under_name(_predict_rows, f"predict_rows_{RULES_FINGERPRINT}"))
