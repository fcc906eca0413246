"""Kernels loaded from numba's disk cache call the right compiled rules.

numba names each compiled function by its module, qualified name and a counter of the process,
and a kernel in the cache carries its own copy of the functions it calls, under those names.
Two kernels loaded from the cache into one process, one per network shape, each bring such
copies: generated functions that shared a qualified name (the per-activation loops, the rule
dispatchers) were then resolved to one another's, and the second network trained with the
wrong activation. Each generated function now has a name of its own; this runs the case in
fresh processes over a cache of its own.
"""

import json
import os
import subprocess
import sys

SCRIPT = r"""
import json, sys
import numpy as np
import matrixprop as mp
rng = np.random.default_rng(0)
X, y = rng.normal(size=(40, 6)), rng.integers(0, 3, 40)
CASES = {"deep": ([6, 5, 4, 3], "identity"), "shallow": ([6, 7, 3], "tanh")}
errors = {}
for name in sys.argv[1:]:
    sizes, hidden = CASES[name]
    params = []
    for accelerate in (False, True):
        net = mp.MLP(sizes, hidden, "softmax", seed=2, dtype="float64")
        mp.fit(net, X, y, optimizer=mp.optimizers.SGD(lr=0.05), batch_size=8, epochs=2, seed=4,
               accelerate=accelerate)
        params.append(net.params)
    errors[name] = float(np.max(np.abs(params[0] - params[1])))
print(json.dumps(errors))
"""


def _errors(env, *cases) -> dict:
    run = subprocess.run([sys.executable, "-c", SCRIPT, *cases], env=env, capture_output=True,
                         text=True, timeout=600, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_two_networks_loaded_from_the_cache_train_like_numpy(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    assert _errors(env, "deep")["deep"] < 1e-12  # compiled and cached, each alone
    assert _errors(env, "shallow")["shallow"] < 1e-12
    both = _errors(env, "deep", "shallow")  # both loaded from the cache into one process
    assert both["deep"] < 1e-12 and both["shallow"] < 1e-12, both
