"""Published figures the benchmarks are measured against, in one place."""

# Colombo et al. (arXiv 2412.00119): held-out accuracy [%] of the 2-hidden-layer BMLP on
# Fashion-MNIST by hidden width, mean and std of 10 runs.
LOCAL_BINARY_FASHION = {35: 82.25, 75: 84.66, 135: 85.68, 255: 86.22, 525: 86.64, 1035: 86.96}
LOCAL_BINARY_FASHION_STD = {35: 0.51, 75: 0.32, 135: 0.34, 255: 0.34, 525: 0.29, 1035: 0.32}
