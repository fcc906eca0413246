"""Speed benchmarks of matrixprop against PyTorch, scikit-learn, JAX and the GEMM bound.

Run them as scripts (``python benchmarks/train_speed.py --help``); pytest does not collect them.
"""
